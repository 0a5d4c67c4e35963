"""All-in-one modules in child processes of their own, so a second core shares the work.

Only a module that publishes no events can run apart: the all-in-one bus lives in the parent's
memory, and the parent relays to the child the events it consumes (`relay_events_to`, see
`kit/events/relay.py`). The parent binds the module's loopback socket and hands it over (the
address is known before the child starts and stays the same when the child is restarted); the
child runs `kibitz serve NAME --fd N` with the parent's settings and the addresses of the other
services.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import signal
import socket
import sys
import time
from collections.abc import Mapping
from urllib.parse import quote

import structlog

from kibitz.kit.events import EventBus, EventEnvelope
from kibitz.kit.events.relay import CONSUMERS_PATH, DELIVERY_PATH, relay_to
from kibitz.kit.http import ServiceClient
from kibitz.kit.http.transport import UpstreamClient, UpstreamError
from kibitz.kit.settings import ENV_PREFIX, PlatformSettings
from kibitz.kit.subscription import Subscription

logger = structlog.get_logger("kibitz.runtime")

# 60 s: a cold start imports every SDK and may apply migrations.
_READY_TIMEOUT_SECONDS = 60.0
# 10 s: uvicorn's graceful shutdown is 3 s; the rest is margin before SIGKILL.
_STOP_TIMEOUT_SECONDS = 10.0
# A child that dies is started again after this many seconds (doubling up to the maximum).
_RESTART_DELAY_SECONDS = 0.5
_RESTART_DELAY_MAX_SECONDS = 30.0
# A child that ran this long before dying gets the short delay again.
_HEALTHY_RUN_SECONDS = 60.0
# linux/prctl.h: have the kernel send a signal to this process when its parent dies.
_PR_SET_PDEATHSIG = 1


class StartupError(RuntimeError):
    """A module could not start; its own error, if any, has been printed above."""


def settings_environment(settings: PlatformSettings) -> dict[str, str]:
    """The platform settings as `KIBITZ_…` variables, so a child process reads the same ones."""
    environment: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        if isinstance(value, list):
            value = ",".join(str(item) for item in value)
        if isinstance(value, bool):
            value = "true" if value else "false"
        environment[f"{ENV_PREFIX}{name.upper()}"] = str(value)
    return environment


def die_with_parent(parent_pid: int) -> bool:
    """Have the kernel kill this process (SIGKILL) the moment its parent ends, however it ends;
    exit at once if the parent is already gone. False where the kernel cannot (not Linux)."""
    armed = False
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        # SIGKILL, not SIGTERM: an orphan has nobody to answer to, and a graceful shutdown that
        # hangs would keep the port (SQLite's WAL survives a kill, as tested elsewhere).
        armed = int(libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)) == 0
    # The parent may have died between our fork and the prctl: then nothing would fire.
    if os.getppid() != parent_pid:
        os._exit(1)
    return armed


class ChildService:
    """One module served by a child process on a socket the parent owns; restarted if it dies."""

    def __init__(
        self,
        name: str,
        sock: socket.socket,
        *,
        url: str,
        environment: Mapping[str, str],
    ) -> None:
        self.name = name
        self.url = url
        self._sock = sock
        self._environment = {**os.environ, **environment}
        self._process: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def pid(self) -> int | None:
        """The running child's process id."""
        return self._process.pid if self._process else None

    async def start(self) -> None:
        """Start the child and wait until it answers its health check."""
        await self._spawn()
        await self._wait_ready()
        self._supervisor = asyncio.create_task(self._supervise())

    async def stop(self) -> None:
        """Ask the child to stop (SIGTERM), and kill it if it does not."""
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
        process = self._process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), _STOP_TIMEOUT_SECONDS)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def _spawn(self) -> None:
        fd = self._sock.fileno()
        command = [sys.executable, "-m", "kibitz", "serve", self.name, "--fd", str(fd)]
        command += ["--parent-pid", str(os.getpid())]
        # A session of its own: Ctrl+C reaches the parent, which then stops the child.
        self._process = await asyncio.create_subprocess_exec(
            *command, env=self._environment, pass_fds=(fd,), start_new_session=True
        )
        logger.info("child_started", service=self.name, pid=self._process.pid)

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + _READY_TIMEOUT_SECONDS
        # 2 s per poll: a child that does not answer that fast is not ready.
        http = UpstreamClient(connect_timeout=2.0, read_timeout=2.0, write_timeout=2.0)
        try:
            while True:
                assert self._process is not None
                if self._process.returncode is not None:
                    raise StartupError(
                        f"{self.name} stopped during start-up (exit {self._process.returncode})"
                    )
                if await _healthy(http, self.url):
                    return
                if time.monotonic() > deadline:
                    raise StartupError(
                        f"{self.name} did not start within {_READY_TIMEOUT_SECONDS} s"
                    )
                await asyncio.sleep(0.05)
        finally:
            await http.aclose()

    async def _supervise(self) -> None:
        delay = _RESTART_DELAY_SECONDS
        while not self._stopping:
            assert self._process is not None
            started = time.monotonic()
            code = await self._process.wait()
            if self._stopping:
                return
            if time.monotonic() - started > _HEALTHY_RUN_SECONDS:
                delay = _RESTART_DELAY_SECONDS
            logger.error("child_exited", service=self.name, code=code, restart_in_seconds=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RESTART_DELAY_MAX_SECONDS)
            try:
                await self._spawn()
            except OSError as exc:
                logger.error("child_restart_failed", service=self.name, error=str(exc))


async def _healthy(http: UpstreamClient, url: str) -> bool:
    """Whether the process at `url` answers its liveness probe with 200."""
    try:
        answer = await http.send(url, "GET", b"/healthz", [], None)
        try:
            await answer.read()
        finally:
            answer.close()
    except UpstreamError:
        return False
    return answer.status == 200


async def relay_events_to(child: ServiceClient, bus: EventBus) -> list[Subscription]:
    """Subscribe on the parent's bus every consumer the running child names, and post it their
    events (a group subscribed now still gets what the bus logged before)."""
    answer = await child.request("GET", CONSUMERS_PATH)
    answer.raise_for_status()

    async def forward(consumer_id: str, envelope: EventEnvelope) -> bool:
        path = DELIVERY_PATH.format(consumer=quote(consumer_id, safe=""))
        posted = await child.request("POST", path, json=envelope.model_dump(mode="json"))
        return posted.status_code == 204

    return await relay_to(bus, list(answer.json()["items"]), forward)
