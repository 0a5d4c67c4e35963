"""CallBatcher: concurrent calls share round trips, each gets its own result."""

from __future__ import annotations

import asyncio

import pytest

from kibitz.kit.batching import CallBatcher, OrderedCoalescer


class Remote:
    """A batch operation that records its batches and can be held while one is out."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.release.set()
        self.fail_next = False

    async def square(self, items: list[int]) -> list[int]:
        self.batches.append(items)
        await self.release.wait()
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("remote down")
        return [item * item for item in items]


async def test_a_lone_call_goes_at_once_in_a_batch_of_its_own() -> None:
    remote = Remote()
    batcher = CallBatcher(remote.square, max_batch=10)
    assert await batcher.call(3) == 9
    assert remote.batches == [[3]]


async def test_calls_made_while_a_batch_is_out_go_together_in_the_next() -> None:
    remote = Remote()
    batcher = CallBatcher(remote.square, max_batch=10)
    remote.release.clear()
    first = asyncio.create_task(batcher.call(1))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(batcher.call(n)) for n in range(2, 7)]
    await asyncio.sleep(0)
    assert remote.batches == [[1]]  # the others wait for the first round trip
    remote.release.set()
    assert await first == 1
    assert await asyncio.gather(*rest) == [4, 9, 16, 25, 36]
    assert remote.batches == [[1], [2, 3, 4, 5, 6]]


async def test_a_batch_holds_at_most_max_batch_items() -> None:
    remote = Remote()
    batcher = CallBatcher(remote.square, max_batch=2)
    remote.release.clear()
    calls = [asyncio.create_task(batcher.call(n)) for n in range(5)]
    await asyncio.sleep(0)
    remote.release.set()
    assert await asyncio.gather(*calls) == [0, 1, 4, 9, 16]
    assert remote.batches == [[0, 1], [2, 3], [4]]


async def test_a_failed_round_trip_fails_its_calls_only() -> None:
    remote = Remote()
    batcher = CallBatcher(remote.square, max_batch=10)
    remote.release.clear()
    remote.fail_next = True
    doomed = [asyncio.create_task(batcher.call(n)) for n in (1, 2)]
    await asyncio.sleep(0)
    later = asyncio.create_task(batcher.call(3))
    await asyncio.sleep(0)
    remote.release.set()
    for call in doomed:
        with pytest.raises(ConnectionError):
            await call
    assert await later == 9


async def test_a_wrong_number_of_results_fails_the_batch() -> None:
    async def short(items: list[int]) -> list[int]:
        return items[:-1]

    batcher = CallBatcher(short, max_batch=10)
    calls = [asyncio.create_task(batcher.call(n)) for n in (1, 2)]
    for call in calls:
        with pytest.raises(RuntimeError, match="1 results for a batch of 2"):
            await call


async def test_a_cancelled_caller_does_not_disturb_the_others() -> None:
    remote = Remote()
    batcher = CallBatcher(remote.square, max_batch=10)
    remote.release.clear()
    gone = asyncio.create_task(batcher.call(2))
    kept = asyncio.create_task(batcher.call(3))
    await asyncio.sleep(0)
    gone.cancel()
    remote.release.set()
    assert await kept == 9
    assert gone.cancelled()
    await batcher.close()


async def test_lingering_calls_made_within_the_window_go_together() -> None:
    remote = Remote()
    batcher = CallBatcher(remote.square, max_batch=10, linger_seconds=0.05)
    first = asyncio.create_task(batcher.call(1))
    await asyncio.sleep(0.01)
    assert remote.batches == []  # the first call waits for company
    second = asyncio.create_task(batcher.call(2))
    assert await asyncio.gather(first, second) == [1, 4]
    assert remote.batches == [[1, 2]]


async def test_a_full_batch_does_not_linger() -> None:
    remote = Remote()
    batcher = CallBatcher(remote.square, max_batch=2, linger_seconds=60)
    calls = [asyncio.create_task(batcher.call(n)) for n in (1, 2)]
    assert await asyncio.wait_for(asyncio.gather(*calls), timeout=5) == [1, 4]
    assert remote.batches == [[1, 2]]


class Lanes:
    """A per-key send that records what each send carried and can be held or made to fail."""

    def __init__(self) -> None:
        self.sends: list[tuple[str, list[int]]] = []
        self.release = asyncio.Event()
        self.release.set()
        self.fail_next = False

    async def send(self, key: str, items: list[int]) -> None:
        self.sends.append((key, items))
        await self.release.wait()
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("remote down")


async def test_a_lone_item_goes_at_once_and_what_comes_meanwhile_goes_together() -> None:
    lanes = Lanes()
    coalescer: OrderedCoalescer[str, int] = OrderedCoalescer(lanes.send)
    lanes.release.clear()
    coalescer.add("a", 1)
    await asyncio.sleep(0)  # the first send is out, held
    coalescer.add("a", 2)
    coalescer.add("a", 3)
    coalescer.add("b", 9)  # another key has its own lane: not held behind "a"
    await asyncio.sleep(0)
    assert lanes.sends == [("a", [1]), ("b", [9])]
    lanes.release.set()
    await coalescer.drain("a")
    assert lanes.sends == [("a", [1]), ("b", [9]), ("a", [2, 3])]
    await coalescer.close()
    assert coalescer._lanes == {}  # idle lanes are forgotten


async def test_a_failed_send_is_raised_once_to_the_next_add_or_drain_of_its_key() -> None:
    lanes = Lanes()
    coalescer: OrderedCoalescer[str, int] = OrderedCoalescer(lanes.send)
    lanes.fail_next = True
    coalescer.add("a", 1)
    coalescer.add("b", 2)
    await coalescer.drain("b")  # "b" went after the failure was used up by "a"'s send
    with pytest.raises(ConnectionError):
        await coalescer.drain("a")
    await coalescer.drain("a")  # reported once
    lanes.fail_next = True
    coalescer.add("a", 3)
    await asyncio.sleep(0.01)
    with pytest.raises(ConnectionError):
        coalescer.add("a", 4)
    assert (("a", [4])) not in lanes.sends
    coalescer.add("a", 5)
    await coalescer.drain("a")
    assert lanes.sends[-1] == ("a", [5])
    assert coalescer._lanes == {}


async def test_a_lingering_key_sends_at_most_once_per_linger_and_a_drain_ends_the_wait() -> None:
    lanes = Lanes()
    coalescer: OrderedCoalescer[str, int] = OrderedCoalescer(lanes.send, linger_seconds=60)
    coalescer.add("a", 1)
    await asyncio.sleep(0.01)
    assert lanes.sends == [("a", [1])]  # the first goes at once
    coalescer.add("a", 2)
    coalescer.add("a", 3)
    await asyncio.sleep(0.05)
    assert lanes.sends == [("a", [1])]  # the rest wait for the linger…
    await asyncio.wait_for(coalescer.drain("a"), 1)  # …or a drain
    assert lanes.sends == [("a", [1]), ("a", [2, 3])]
    await asyncio.wait_for(coalescer.close(), 1)  # nothing waits: closing is prompt too

    short: OrderedCoalescer[str, int] = OrderedCoalescer(lanes.send, linger_seconds=0.02)
    short.add("b", 1)
    await asyncio.sleep(0)
    short.add("b", 2)
    for _ in range(100):  # a short linger passes by itself
        if ("b", [2]) in lanes.sends:
            break
        await asyncio.sleep(0.01)
    assert lanes.sends[-2:] == [("b", [1]), ("b", [2])]
