"""Subscriptions served by background tasks: what the event bus and the job queue share.

A bus subscriber and a queue consumer are both a few asyncio tasks that the backend owns (so
`close()` can stop them all) and that the caller stops early with `cancel()`. One class serves
every backend of both, plus the two small rules their receive loops follow while stopping.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
from collections.abc import Callable
from typing import Protocol

# 5 s: a shutdown must not hang on a connection stuck mid-read.
_STOP_TIMEOUT_SECONDS = 5.0

_replica_counter = itertools.count(1)


class Subscription(Protocol):
    """A running subscription of one replica; cancel it when the service stops."""

    async def cancel(self) -> None:
        """Stop receiving; work not yet acknowledged goes to another replica."""


class TaskSubscription:
    """A subscription that is a set of tasks, also registered with the backend that started it."""

    def __init__(
        self,
        owner_tasks: set[asyncio.Task[None]],
        tasks: list[asyncio.Task[None]],
        *,
        on_cancel: Callable[[], None] | None = None,
    ) -> None:
        self._owner_tasks = owner_tasks
        self._tasks = tasks
        self._on_cancel = on_cancel
        owner_tasks.update(tasks)

    async def cancel(self) -> None:
        """Cancel the tasks, wait for them to finish, and forget them."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._owner_tasks.difference_update(self._tasks)
        if self._on_cancel is not None:
            self._on_cancel()


async def stop_tasks(tasks: set[asyncio.Task[None]]) -> None:
    """Cancel every task of a backend that is closing and wait (briefly) until they stopped."""
    pending = list(tasks)
    for task in pending:
        task.cancel()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(
            asyncio.gather(*pending, return_exceptions=True), _STOP_TIMEOUT_SECONDS
        )
    tasks.clear()


def raise_if_cancelling(exc: BaseException | None) -> None:
    """Re-raise cancellation that a client library turned into another error while we stop."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError from exc


def replica_name(group: str) -> str:
    """A consumer name unique to this process and subscription."""
    return f"{group}-{socket.gethostname()}-{os.getpid()}-{next(_replica_counter)}"
