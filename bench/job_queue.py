"""Job queue cost: enqueue → handler start, and a whole enqueue → handler → complete round.

    .venv/bin/python bench/job_queue.py [--url memory|redis://…|nats://…] [--jobs N]

One consumer (concurrency 1); each job is enqueued only after the previous one completed, so
every figure is one job's latency with nothing queued ahead of it. Prints the median and p99 in
microseconds, the process's CPU per job (enqueue, claim, complete: producer and consumer share
the process), and as a baseline the same hand-off through a bare asyncio.Queue to a worker task
(the floor any in-process queue pays). The in-process queue sits on a reply's
first-token path: its figures are quoted in `kit/jobs/memory.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

from kibitz.kit.jobs import Job, Lease, create_job_queue


async def measure(url: str, jobs: int) -> dict[str, float]:
    """Median and p99 (µs) of enqueue → start and enqueue → completed, over `jobs` jobs."""
    # One namespace for every run (a broker keeps one stream, not one per run); ids unique per run
    # so that no broker's duplicate window swallows a rerun's jobs.
    run = uuid.uuid4().hex[:8]
    queue = create_job_queue(url, namespace="bench", lease_seconds=5.0)
    await queue.start()
    started: list[float] = []
    finished: asyncio.Queue[float] = asyncio.Queue()

    async def handler(lease: Lease) -> None:
        started.append(time.perf_counter())
        await lease.complete()
        finished.put_nowait(time.perf_counter())

    subscription = await queue.consume("bench.job", handler, concurrency=1)
    to_start: list[float] = []
    to_done: list[float] = []
    cpu_began = time.process_time()
    try:
        for number in range(jobs):
            began = time.perf_counter()
            await queue.enqueue(Job(id=f"{run}-{number}", kind="bench.job", payload={"n": number}))
            done = await finished.get()
            to_start.append(started[-1] - began)
            to_done.append(done - began)
        cpu_seconds = time.process_time() - cpu_began
    finally:
        await subscription.cancel()
        await queue.close()
    to_start.sort()
    to_done.sort()
    return {
        "start_p50_us": statistics.median(to_start) * 1e6,
        "start_p99_us": to_start[int(len(to_start) * 0.99) - 1] * 1e6,
        "done_p50_us": statistics.median(to_done) * 1e6,
        "done_p99_us": to_done[int(len(to_done) * 0.99) - 1] * 1e6,
        # Producer and consumer share this process: kit's whole CPU cost of one job.
        "cpu_per_job_us": cpu_seconds / jobs * 1e6,
    }


async def measure_bare_queue(jobs: int) -> float:
    """Median (µs) of put → worker wakes, through a bare asyncio.Queue: the baseline."""
    inbox: asyncio.Queue[float] = asyncio.Queue()
    woke: asyncio.Queue[float] = asyncio.Queue()

    async def worker() -> None:
        while True:
            began = await inbox.get()
            woke.put_nowait(time.perf_counter() - began)

    task = asyncio.create_task(worker())
    delays = []
    for _ in range(jobs):
        inbox.put_nowait(time.perf_counter())
        delays.append(await woke.get())
    task.cancel()
    return statistics.median(delays) * 1e6


def main() -> None:
    """Parse the options, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="memory")
    parser.add_argument("--jobs", type=int, default=20_000)
    options = parser.parse_args()
    figures = asyncio.run(measure(options.url, options.jobs))
    baseline = asyncio.run(measure_bare_queue(options.jobs))
    print(f"job queue {options.url.split('?')[0]}: {options.jobs} jobs, one at a time")
    for name, value in figures.items():
        print(f"  {name:14} {value:10.1f}")
    print(f"  baseline: bare asyncio.Queue hop p50 {baseline:.1f} us")
    print(f"  start p50 / baseline: {figures['start_p50_us'] / baseline:.2f}x")


if __name__ == "__main__":
    main()
