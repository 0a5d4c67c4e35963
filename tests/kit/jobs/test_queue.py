"""The queue's promises on every backend: once, bounded, retried, handed on, renewed, final."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from kibitz.kit.jobs import Job, Lease, create_job_queue
from kibitz.kit.jobs.memory import InProcessJobQueue
from tests.fixtures.tcp_proxy import TcpProxy
from tests.kit.jobs.conftest import QueueFactory

KIND = "tests.work"
ROOT = Path(__file__).resolve().parents[3]


def job(number: int, kind: str = KIND) -> Job:
    return Job(id=f"job-{number}", kind=kind, payload={"number": number, "text": "héllo"})


async def wait_until(check: Callable[[], bool], *, seconds: float = 10.0) -> None:
    """Poll `check` until it holds; fail after `seconds`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not check():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def settle_time(queues: QueueFactory, lease_seconds: float) -> None:
    """Long enough that a lease which was going to lapse has lapsed and been reclaimed."""
    await asyncio.sleep(lease_seconds + 1.5 if queues.brokered else 0.1)


def test_create_job_queue_picks_the_backend_the_url_names() -> None:
    assert isinstance(create_job_queue("memory", namespace="chat"), InProcessJobQueue)
    assert isinstance(create_job_queue("", namespace="chat"), InProcessJobQueue)
    with pytest.raises(ValueError, match="kafka"):
        create_job_queue("kafka://localhost", namespace="chat")


async def test_an_enqueued_job_is_handled_once_by_one_of_the_consumers(
    queues: QueueFactory,
) -> None:
    seen: list[tuple[str, Job, int]] = []

    def recording(name: str) -> Callable[[Lease], Awaitable[None]]:
        async def handler(lease: Lease) -> None:
            seen.append((name, lease.job, lease.attempt))

        return handler

    first, second = await queues.replica(), await queues.replica()
    await first.consume(KIND, recording("first"), concurrency=2)
    await second.consume(KIND, recording("second"), concurrency=2)
    await first.enqueue(job(1))

    await wait_until(lambda: len(seen) == 1)
    await settle_time(queues, first.lease_seconds)
    assert [(j, attempt) for _, j, attempt in seen] == [(job(1), 1)]
    assert await first.depth(KIND) == 0


async def test_enqueueing_the_same_id_again_while_it_waits_runs_it_once(
    queues: QueueFactory,
) -> None:
    queue = await queues.replica()
    await queue.enqueue(job(1))
    await queue.enqueue(job(1))
    assert await queue.depth(KIND) == 1
    handled: list[Job] = []

    async def handler(lease: Lease) -> None:
        handled.append(lease.job)

    await queue.consume(KIND, handler, concurrency=4)
    await wait_until(lambda: len(handled) == 1)
    await settle_time(queues, queue.lease_seconds)
    assert handled == [job(1)]


async def test_a_consumer_runs_at_most_concurrency_handlers_at_once(queues: QueueFactory) -> None:
    queue = await queues.replica()
    for number in range(8):
        await queue.enqueue(job(number))
    running = 0
    most = 0
    done: list[int] = []

    async def handler(lease: Lease) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.1)
        running -= 1
        done.append(lease.job.payload["number"])

    await queue.consume(KIND, handler, concurrency=3)
    await wait_until(lambda: len(done) == 8)
    assert most == 3
    assert sorted(done) == list(range(8))


async def test_a_handler_that_raises_gets_its_job_again_at_once(queues: QueueFactory) -> None:
    # 30 s leases: only a give-back (not a lapse) can bring the job back within the test.
    queue = await queues.replica(lease_seconds=30.0)
    attempts: list[int] = []

    async def handler(lease: Lease) -> None:
        attempts.append(lease.attempt)
        if lease.attempt == 1:
            raise RuntimeError("the model timed out")

    await queue.consume(KIND, handler, concurrency=1)
    await queue.enqueue(job(1))
    await wait_until(lambda: len(attempts) == 2, seconds=5.0)
    await asyncio.sleep(0.3)
    assert attempts == [1, 2]
    assert await queue.depth(KIND) == 0


async def test_release_gives_the_job_back_for_another_try(queues: QueueFactory) -> None:
    queue = await queues.replica(lease_seconds=30.0)
    attempts: list[int] = []

    async def handler(lease: Lease) -> None:
        attempts.append(lease.attempt)
        if lease.attempt < 3:
            await lease.release()

    await queue.consume(KIND, handler, concurrency=1)
    await queue.enqueue(job(1))
    await wait_until(lambda: len(attempts) == 3, seconds=5.0)
    await asyncio.sleep(0.3)
    assert attempts == [1, 2, 3]


async def test_a_job_that_keeps_failing_is_dropped_after_its_last_attempt(
    queues: QueueFactory,
) -> None:
    queue = await queues.replica(lease_seconds=30.0, max_attempts=3)
    attempts: list[int] = []

    async def handler(lease: Lease) -> None:
        attempts.append(lease.attempt)
        raise RuntimeError("always")

    await queue.consume(KIND, handler, concurrency=1)
    await queue.enqueue(job(1))
    await wait_until(lambda: len(attempts) >= 3, seconds=5.0)
    await asyncio.sleep(0.5)
    assert attempts == [1, 2, 3]
    assert await queue.depth(KIND) == 0


async def test_a_stopped_consumer_hands_its_job_to_another_at_once(queues: QueueFactory) -> None:
    holder_queue = await queues.replica(lease_seconds=30.0)
    other_queue = await queues.replica(lease_seconds=30.0)
    holding = asyncio.Event()
    taken_over: list[int] = []

    async def hold_forever(lease: Lease) -> None:
        holding.set()
        await asyncio.Event().wait()

    async def finish(lease: Lease) -> None:
        taken_over.append(lease.attempt)

    holder = await holder_queue.consume(KIND, hold_forever, concurrency=1)
    await holder_queue.enqueue(job(1))
    await asyncio.wait_for(holding.wait(), 10.0)
    await other_queue.consume(KIND, finish, concurrency=1)
    await holder.cancel()

    await wait_until(lambda: len(taken_over) == 1, seconds=5.0)
    assert taken_over == [2]


async def test_a_long_handler_keeps_its_lease(queues: QueueFactory) -> None:
    # Runs for three lease periods: without renewals another consumer would reclaim the job.
    first, second = await queues.replica(), await queues.replica()
    deliveries: list[int] = []
    finished = asyncio.Event()

    async def slow(lease: Lease) -> None:
        deliveries.append(lease.attempt)
        await asyncio.sleep(first.lease_seconds * 3)
        finished.set()

    await first.consume(KIND, slow, concurrency=1)
    await second.consume(KIND, slow, concurrency=1)
    await first.enqueue(job(1))
    await asyncio.wait_for(finished.wait(), first.lease_seconds * 3 + 10)
    await settle_time(queues, first.lease_seconds)
    assert deliveries == [1]


async def test_a_completed_job_is_never_delivered_again(queues: QueueFactory) -> None:
    queue = await queues.replica()
    deliveries: list[int] = []

    async def complete_then_fail(lease: Lease) -> None:
        deliveries.append(lease.attempt)
        await lease.complete()
        await lease.release()
        raise RuntimeError("after the job was done")

    await queue.consume(KIND, complete_then_fail, concurrency=2)
    await queue.enqueue(job(1))
    await wait_until(lambda: len(deliveries) == 1)
    await settle_time(queues, queue.lease_seconds)
    assert deliveries == [1]
    assert await queue.depth(KIND) == 0


async def test_depth_counts_waiting_and_leased_jobs_of_a_kind(queues: QueueFactory) -> None:
    queue = await queues.replica()
    for number in range(3):
        await queue.enqueue(job(number))
    await queue.enqueue(job(9, kind="tests.other"))
    assert await queue.depth(KIND) == 3
    gate = asyncio.Event()
    started: list[int] = []

    async def gated(lease: Lease) -> None:
        started.append(lease.job.payload["number"])
        await gate.wait()

    await queue.consume(KIND, gated, concurrency=1)
    await wait_until(lambda: len(started) == 1)
    assert await queue.depth(KIND) == 3  # one leased, two waiting
    gate.set()
    await wait_until(lambda: len(started) == 3)

    async def drained() -> bool:
        return await queue.depth(KIND) == 0

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not await drained():
        assert loop.time() < deadline, "depth never reached 0"
        await asyncio.sleep(0.02)
    assert await queue.depth("tests.other") == 1


async def test_a_job_whose_holder_died_goes_to_another_consumer_within_a_lease_and_a_second(
    queues: QueueFactory,
) -> None:
    if not queues.brokered:
        pytest.skip("the in-process queue dies with its process; chat sweeps at start-up")
    lease_seconds = 3.0
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fixtures.job_holder",
        queues.url(),
        queues.namespace,
        KIND,
        str(lease_seconds),
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        assert holder.stdout is not None
        assert (await asyncio.wait_for(holder.stdout.readline(), 30)).strip() == b"consuming"
        queue = await queues.replica(lease_seconds=lease_seconds)
        await queue.enqueue(job(1))
        held = await asyncio.wait_for(holder.stdout.readline(), 10)
        assert held.split() == [b"holding", b"job-1", b"1"]

        loop = asyncio.get_running_loop()
        taken: list[tuple[int, float]] = []

        async def take(lease: Lease) -> None:
            taken.append((lease.attempt, loop.time()))

        await queue.consume(KIND, take, concurrency=1)
        # The living holder renews its lease: nobody else gets the job meanwhile.
        await asyncio.sleep(lease_seconds * 1.5)
        assert taken == []
        assert await queue.depth(KIND) == 1

        holder.kill()
        killed_at = loop.time()
        await holder.wait()
        reclaimed_before = _sample("kibitz_jobs_reclaimed_total", kind=KIND)
        await wait_until(lambda: bool(taken), seconds=lease_seconds + 10)
        attempt, taken_at = taken[0]
        assert attempt == 2
        assert taken_at - killed_at <= lease_seconds + 1.0
        await asyncio.sleep(0.3)
        assert len(taken) == 1
        assert await queue.depth(KIND) == 0
        assert _sample("kibitz_jobs_reclaimed_total", kind=KIND) == reclaimed_before + 1
    finally:
        if holder.returncode is None:
            holder.kill()
            await holder.wait()


async def test_metrics_count_jobs_enqueued_and_how_their_leases_ended_by_kind(
    queues: QueueFactory,
) -> None:
    kind = f"tests.metrics{queues.namespace}"
    queue = await queues.replica(lease_seconds=30.0)
    handled: list[tuple[str, int]] = []

    async def handler(lease: Lease) -> None:
        handled.append((lease.job.id, lease.attempt))
        if lease.job.id == "job-2" and lease.attempt == 1:
            raise RuntimeError("once")
        if lease.job.id == "job-3" and lease.attempt == 1:
            await lease.release()

    await queue.consume(kind, handler, concurrency=1)
    for number in (1, 2, 3):
        await queue.enqueue(job(number, kind=kind))
    await queue.enqueue(job(1, kind=kind))  # a duplicate: not counted
    await wait_until(lambda: len(handled) == 5)
    await asyncio.sleep(0.3)
    assert _sample("kibitz_jobs_enqueued_total", kind=kind) == 3
    assert _sample("kibitz_jobs_completed_total", kind=kind, outcome="ok") == 3
    assert _sample("kibitz_jobs_completed_total", kind=kind, outcome="error") == 1
    assert _sample("kibitz_jobs_completed_total", kind=kind, outcome="released") == 1
    assert _sample("kibitz_jobs_reclaimed_total", kind=kind) == 0


async def test_a_consumer_goes_on_after_the_broker_was_unreachable(queues: QueueFactory) -> None:
    if not queues.brokered:
        pytest.skip("the in-process queue has no broker to lose")
    port = 6379 if queues.backend == "redis" else 4222
    proxy = TcpProxy("127.0.0.1", port)
    await proxy.start()
    consumer = await queues.replica(port=proxy.port)
    producer = await queues.replica()
    handled: list[str] = []

    async def handler(lease: Lease) -> None:
        handled.append(lease.job.id)

    try:
        await consumer.consume(KIND, handler, concurrency=2)
        await producer.enqueue(job(1))
        await wait_until(lambda: handled == ["job-1"])
        await proxy.stop()
        await producer.enqueue(job(2))
        await asyncio.sleep(1.5)
        assert handled == ["job-1"], "nothing is delivered while the broker is out of reach"
        await proxy.start()
        await wait_until(lambda: "job-2" in handled, seconds=30)
        await settle_time(queues, consumer.lease_seconds)
        assert handled == ["job-1", "job-2"]
    finally:
        await proxy.stop()
