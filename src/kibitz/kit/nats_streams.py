"""One JetStream stream over one lazily opened NATS connection: the event bus and the job queue
each own one (kit/events, kit/jobs).

The connection opens on first use and reconnects on its own; the stream is created when missing
(another process creating it at the same moment is fine) and takes the configured retention
limits when it exists with others. A consumer that finds the stream gone calls `forget_stream`
so the next use builds it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re

import nats
import structlog
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

logger = structlog.get_logger("kibitz.nats")

# 3 s: how long a publish or a management call waits for the server's answer.
_REQUEST_TIMEOUT_SECONDS = 3.0
# 2 s (20 looks, 0.1 s apart): how long a stream another process just created may take to be listed.
_CREATED_ELSEWHERE_LOOKS = 20


def stream_token(value: str) -> str:
    """A stream or consumer name: letters, digits, `-` and `_` only."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", value)


class JetStreamConnection:
    """A NATS connection and the stream `config` describes, both made on first use."""

    def __init__(self, url: str, config: StreamConfig) -> None:
        self.url = url
        self.config = config
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._stream_ready = False
        self._lock = asyncio.Lock()

    @property
    def stream(self) -> str:
        assert self.config.name is not None
        return self.config.name

    async def jetstream(self) -> JetStreamContext:
        """The JetStream context, connected and with the stream in place."""
        async with self._lock:
            if self._nc is None or self._nc.is_closed:
                self._nc = await nats.connect(
                    servers=[self.url],
                    connect_timeout=2,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    error_cb=self._on_error,
                )
                self._js = self._nc.jetstream(timeout=_REQUEST_TIMEOUT_SECONDS)
                self._stream_ready = False
            assert self._js is not None
            if not self._stream_ready:
                await self._ensure_stream(self._js)
                self._stream_ready = True
            return self._js

    def forget_stream(self) -> None:
        """The stream (or a consumer on it) was removed: look again on next use."""
        self._stream_ready = False

    async def close(self) -> None:
        """Drain the connection (within 5 s)."""
        if self._nc is not None and not self._nc.is_closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._nc.close(), 5.0)

    async def _on_error(self, exc: Exception) -> None:
        logger.debug("nats_client_error", error=repr(exc))

    async def _ensure_stream(self, js: JetStreamContext) -> None:
        config = self.config
        try:
            info = await js.stream_info(self.stream)
        except NotFoundError:
            try:
                await js.add_stream(config)
            except BadRequestError:
                # Another process created it between our look and our create: use theirs once
                # the server lists it (a busy server can take a moment).
                for _ in range(_CREATED_ELSEWHERE_LOOKS):
                    with contextlib.suppress(NotFoundError):
                        await js.stream_info(self.stream)
                        return
                    await asyncio.sleep(0.1)
                raise
            return
        current = info.config
        limits = ("max_age", "max_bytes", "max_msgs")
        wanted = {name: getattr(config, name) for name in limits if getattr(config, name)}
        if any(getattr(current, name) != value for name, value in wanted.items()):
            # A stream made before these limits (or with other ones) takes the configured.
            await js.update_stream(dataclasses.replace(current, **wanted))
