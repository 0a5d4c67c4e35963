"""Calls to a remote operation, coalesced: concurrent calls into batches (one round trip each),
and one producer's items per key into fewer sends."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class CallBatcher(Generic[Item, Result]):
    """Sends items through `send_batch` with one batch in flight at a time: a call made while
    a batch is out waits for it, then goes with every other call made meanwhile.

    By default no call waits on a timer: a lone call goes at once, and under load each round trip
    carries what piled up during the last one (at most `max_batch` items). Calls nobody waits for
    (records of work done) may `linger`: a batch then leaves that long after its first call, with
    every call made meanwhile. `send_batch` answers one result per item, in order; if it raises,
    every call of that batch raises the same error.
    """

    def __init__(
        self,
        send_batch: Callable[[list[Item]], Awaitable[list[Result]]],
        *,
        max_batch: int,
        linger_seconds: float = 0.0,
    ) -> None:
        self._send_batch = send_batch
        self._max_batch = max_batch
        self._linger_seconds = linger_seconds
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def call(self, item: Item) -> Result:
        """The item's result, from the batch it went out in."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_all())
        return await future

    async def _send_all(self) -> None:
        try:
            while self._waiting:
                if self._linger_seconds > 0 and len(self._waiting) < self._max_batch:
                    await asyncio.sleep(self._linger_seconds)
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
                await self._send(batch)
        finally:
            self._sender = None
            for _, future in self._waiting:  # left behind only when this task is cancelled
                future.cancel()
            self._waiting.clear()

    async def _send(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            results = await self._send_batch([item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"{len(results)} results for a batch of {len(batch)}")
        except Exception as error:
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        except BaseException:
            for _, future in batch:
                future.cancel()
            raise
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():  # its caller may have been cancelled meanwhile
                future.set_result(result)

    async def close(self) -> None:
        """Wait for the batches already asked for."""
        if self._sender is not None:
            await asyncio.gather(self._sender, return_exceptions=True)


Key = TypeVar("Key")


class _Lane(Generic[Item]):
    def __init__(self) -> None:
        self.waiting: list[Item] = []
        self.sender: asyncio.Task[None] | None = None
        self.failure: Exception | None = None
        # Set while the lane lingers between sends; `drain` sets it to end the wait.
        self.hurry: asyncio.Future[None] | None = None
        self.drains = 0  # drains waiting: no lingering meanwhile


class OrderedCoalescer(Generic[Key, Item]):
    """Sends items in the order given, per key, without making their producer wait: one send in
    flight per key, and whatever is added meanwhile goes together in the next (`send` gets the
    key and every item since the last send).

    A lone item goes at once. Without `linger`, each round trip carries what piled up during the
    last one, so a fast producer costs fewer round trips instead of waiting on each. With
    `linger`, a key's sends start at least that far apart (the first at once): at most one send
    per linger per busy key, each item later by at most the linger; `drain` ends the wait. A
    failed send is raised to the next `add` or `drain` of its key (its items are lost with it).
    """

    def __init__(
        self, send: Callable[[Key, list[Item]], Awaitable[None]], *, linger_seconds: float = 0.0
    ) -> None:
        self._send = send
        self._linger_seconds = linger_seconds
        self._lanes: dict[Key, _Lane[Item]] = {}

    def add(self, key: Key, item: Item) -> None:
        """Queue the item behind the key's earlier ones (raises an earlier send's failure)."""
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane()
        elif lane.failure is not None:
            self._report(key, lane)
        lane.waiting.append(item)
        if lane.sender is None:
            lane.sender = asyncio.create_task(self._send_all(key, lane))

    async def drain(self, key: Key) -> None:
        """Wait until every item added under the key is sent (raises a failed send's error)."""
        lane = self._lanes.get(key)
        if lane is None:
            return
        if lane.sender is not None:
            lane.drains += 1
            _hurry(lane)
            try:
                await asyncio.shield(lane.sender)
            finally:
                lane.drains -= 1
        if lane.failure is not None:
            self._report(key, lane)

    async def close(self) -> None:
        """Wait for every key's items to be sent."""
        self._linger_seconds = 0.0
        for lane in self._lanes.values():
            _hurry(lane)
        senders = [lane.sender for lane in self._lanes.values() if lane.sender is not None]
        await asyncio.gather(*senders, return_exceptions=True)

    async def _send_all(self, key: Key, lane: _Lane[Item]) -> None:
        loop = asyncio.get_running_loop()
        try:
            while lane.waiting:
                started = loop.time()
                items, lane.waiting = lane.waiting, []
                try:
                    await self._send(key, items)
                except Exception as error:
                    lane.failure = error
                    lane.waiting.clear()
                    return
                if self._linger_seconds > 0 and not lane.drains:
                    await self._linger(lane, started + self._linger_seconds)
        finally:
            lane.sender = None
            # An idle lane is forgotten, unless it still has a failure to report.
            if not lane.waiting and lane.failure is None and self._lanes.get(key) is lane:
                del self._lanes[key]

    @staticmethod
    async def _linger(lane: _Lane[Item], until: float) -> None:
        """Wait until `until` (loop time) or until someone drains the lane."""
        loop = asyncio.get_running_loop()
        delay = until - loop.time()
        if delay <= 0:
            return
        lane.hurry = loop.create_future()
        timer = loop.call_later(delay, _hurry, lane)
        try:
            await lane.hurry
        finally:
            timer.cancel()
            lane.hurry = None

    def _report(self, key: Key, lane: _Lane[Item]) -> None:
        """Raise the lane's failure once, and forget the lane (it is idle: the send failed)."""
        failure, lane.failure = lane.failure, None
        if self._lanes.get(key) is lane and lane.sender is None:
            del self._lanes[key]
        assert failure is not None
        raise failure


def _hurry(lane: _Lane[Any]) -> None:
    if lane.hurry is not None and not lane.hurry.done():
        lane.hurry.set_result(None)
