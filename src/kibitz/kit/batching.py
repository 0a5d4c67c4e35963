"""Concurrent calls to one remote operation, coalesced into batches (one round trip each)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

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
