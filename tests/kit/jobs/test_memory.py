"""The in-process queue: order, and its micro-benchmark runs (figures in kit/jobs/memory.py)."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

from kibitz.kit.jobs import InProcessJobQueue, Job, Lease

ROOT = Path(__file__).resolve().parents[3]


async def test_one_worker_handles_jobs_in_the_order_they_were_enqueued() -> None:
    queue = InProcessJobQueue()
    handled: list[int] = []

    async def handler(lease: Lease) -> None:
        handled.append(lease.job.payload["number"])
        await asyncio.sleep(0)

    try:
        for number in range(20):
            await queue.enqueue(Job(id=str(number), kind="k", payload={"number": number}))
        await queue.consume("k", handler, concurrency=1)
        for number in range(20, 40):
            await queue.enqueue(Job(id=str(number), kind="k", payload={"number": number}))
        for _ in range(1000):
            if len(handled) == 40:
                break
            await asyncio.sleep(0.01)
    finally:
        await queue.close()
    assert handled == list(range(40))


async def test_a_completed_id_can_be_enqueued_again() -> None:
    # Idempotency covers jobs waiting or leased; a finished one is the caller's to repeat.
    queue = InProcessJobQueue()
    handled: list[str] = []

    async def handler(lease: Lease) -> None:
        handled.append(lease.job.id)

    try:
        await queue.consume("k", handler, concurrency=1)
        for _ in range(2):
            await queue.enqueue(Job(id="same", kind="k", payload={}))
            for _ in range(100):
                if await queue.depth("k") == 0:
                    break
                await asyncio.sleep(0.01)
    finally:
        await queue.close()
    assert handled == ["same", "same"]


def test_the_micro_benchmark_prints_start_and_round_trip_figures() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "job_queue.py"), "--jobs", "300"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    figures = dict(re.findall(r"(\w+_us)\s+([\d.]+)", result.stdout))
    assert set(figures) == {
        "start_p50_us",
        "start_p99_us",
        "done_p50_us",
        "done_p99_us",
        "cpu_per_job_us",
    }
    assert 0 < float(figures["start_p50_us"]) <= float(figures["done_p50_us"])
