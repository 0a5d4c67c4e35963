"""Running apps with uvicorn: several in one event loop (all-in-one) or one per process."""

from __future__ import annotations

import asyncio
import errno
import gc
import os
import secrets
import socket
from collections.abc import AsyncIterator, Generator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field

import uvicorn
from fastapi import FastAPI

from kibitz.kit.events import EventBus, create_bus
from kibitz.kit.events.relay import RelayedBus
from kibitz.kit.platform import Module, Platform
from kibitz.kit.settings import ENV_PREFIX, PlatformSettings, service_urls_from_env
from kibitz.kit.subscription import Subscription
from kibitz.runtime.children import (
    ChildService,
    StartupError,
    relay_events_to,
    settings_environment,
)
from kibitz.runtime.registry import SERVICE_NAMES, available_modules


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to whoever runs the event loop."""

    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket (port 0 picks a free one); StartupError naming the address when
    it cannot be had (a port in use is the usual case, and says so in one line)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and
    # without it a response written in two parts waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as error:
        sock.close()
        raise StartupError(_cannot_listen(host, port, error)) from None
    sock.setblocking(False)
    return sock


def _cannot_listen(host: str, port: int, error: OSError) -> str:
    if error.errno == errno.EADDRINUSE:
        return f"port {port} is already in use on {host}: stop what listens there or choose another"
    if error.errno == errno.EACCES:
        return f"port {port} needs privileges to listen on: choose one above 1023"
    return f"cannot listen on {host}:{port}: {error.strerror or error}"


def server_config(app: FastAPI) -> uvicorn.Config:
    """uvicorn settings shared by every kibitz app."""
    return uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=3,
        timeout_keep_alive=30,
        proxy_headers=False,
    )


@dataclass
class RunningStack:
    """Every module of an all-in-one stack, with the address it listens on."""

    platform: Platform
    urls: dict[str, str]
    # The apps served in this process (not those of `children`).
    apps: dict[str, FastAPI]
    children: list[ChildService] = field(default_factory=list)

    @property
    def gateway_url(self) -> str:
        """The public entry point."""
        return self.urls["gateway"]


# A serving process allocates many short-lived objects per request (pydantic, SQLAlchemy, ASGI
# messages): with Python's default thresholds (700, 10, 10) the young generation is collected
# every few hundred of them, and older ones are rescanned often, the oldest with the whole heap
# (a pause of ~350 ms here). Measured with bench/chat_stream.py at concurrency 16: 9% less CPU
# per reply and p99 time to first token ~40% lower with these.
SERVING_GC_THRESHOLDS = (10_000, 50, 100)


def tune_garbage_collection() -> None:
    """Collect cyclic garbage less often, as suits a long-running server process."""
    gc.set_threshold(*SERVING_GC_THRESHOLDS)


@asynccontextmanager
async def run_all_in_one(
    *,
    settings: PlatformSettings,
    host: str = "127.0.0.1",
    port: int = 8000,
    modules: list[str] | None = None,
) -> AsyncIterator[RunningStack]:
    """Start every module: services on loopback, the gateway on host:port.

    They share this event loop, except the modules named in `settings.own_processes`, which
    run in child processes of their own (see `runtime/children.py`).
    """
    selected = available_modules(modules)
    apart = _modules_apart(settings, selected)
    token = settings.internal_token.get_secret_value() if settings.internal_token else ""
    token = token or secrets.token_urlsafe(32)
    sockets = {
        name: bind_socket(host, port) if name == "gateway" else bind_socket("127.0.0.1", 0)
        for name in selected
    }
    urls = {name: _url_of(sock) for name, sock in sockets.items()}
    service_urls = {name: [url] for name, url in urls.items() if name != "gateway"}
    platform = Platform(
        settings=settings,
        service_urls=service_urls,
        bus=create_bus(settings.bus_url, retention=settings.bus_retention()),
        internal_token=token,
    )
    await platform.bus.start()
    revocations = asyncio.create_task(platform.keep_revocations_current())
    apps = {
        name: build_app(module, platform) for name, module in selected.items() if name not in apart
    }
    servers: list[tuple[EmbeddedServer, asyncio.Task[None]]] = []
    children: list[ChildService] = []
    relayed: list[Subscription] = []
    try:
        for name, app in apps.items():
            server = EmbeddedServer(server_config(app))
            task = asyncio.create_task(server.serve(sockets=[sockets[name]]))
            servers.append((server, task))
            await _wait_started(server, task, name)
        environment = {
            **settings_environment(settings),
            f"{ENV_PREFIX}INTERNAL_TOKEN": token,
            **{f"{ENV_PREFIX}{name.upper()}_URL": url[0] for name, url in service_urls.items()},
        }
        for name in apart:
            child = ChildService(name, sockets[name], url=urls[name], environment=environment)
            children.append(child)
            await child.start()
            if not settings.has_broker:  # with one, the child connects to it itself
                relayed += await relay_events_to(platform.client(name), platform.bus)
        yield RunningStack(platform=platform, urls=urls, apps=apps, children=children)
    finally:
        for subscription in relayed:
            await subscription.cancel()
        await asyncio.gather(*(child.stop() for child in children), return_exceptions=True)
        for server, _ in reversed(servers):
            server.should_exit = True
        await asyncio.gather(*(task for _, task in servers), return_exceptions=True)
        revocations.cancel()
        await asyncio.gather(revocations, return_exceptions=True)
        await platform.close_clients()
        await platform.bus.close()
        for sock in sockets.values():
            sock.close()


def _modules_apart(settings: PlatformSettings, selected: dict[str, Module]) -> list[str]:
    """The selected modules to run in child processes (only those that publish no events)."""
    apart = [name for name in settings.own_processes if name in selected]
    for name in apart:
        if selected[name].publishes_events:
            raise ValueError(
                f"{name} cannot run in a process of its own all-in-one: it publishes events"
            )
    return apart


async def _wait_started(server: uvicorn.Server, task: asyncio.Task[None], name: str) -> None:
    while not server.started:
        if task.done():
            task.result()
            raise StartupError(f"{name} stopped during start-up")
        await asyncio.sleep(0.01)


def _url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def distributed_platform(settings: PlatformSettings, *, bus: EventBus | None = None) -> Platform:
    """A platform whose service addresses come from `KIBITZ_<SERVICE>_URL` variables (and whose
    bus is the broker's, unless another is given)."""
    if settings.internal_token is None:
        raise StartupError("KIBITZ_INTERNAL_TOKEN must be set when services run apart")
    return Platform(
        settings=settings,
        service_urls=service_urls_from_env(SERVICE_NAMES),
        bus=bus or create_bus(settings.bus_url, retention=settings.bus_retention()),
        internal_token=settings.internal_token.get_secret_value(),
    )


def check_required_peers(module: Module, platform: Platform) -> None:
    """StartupError naming the first `KIBITZ_<NAME>_URL` a module needs but was not given."""
    for peer in module.requires:
        if not platform.has_service(peer):
            variable = f"{ENV_PREFIX}{peer.upper()}_URL"
            raise StartupError(f"{variable} must be set: {module.name} needs the {peer} service")


def check_shared_settings(module: Module, environ: Mapping[str, str] | None = None) -> None:
    """StartupError naming the first setting every replica of a module run apart must share
    (`Module.shared_settings`) that is not set."""
    # Settings are read case-insensitively (pydantic-settings), so the check is too.
    given = {name.upper(): value for name, value in (environ or os.environ).items()}
    for variable in module.shared_settings:
        if not given.get(variable.upper(), "").strip():
            raise StartupError(
                f"{variable} must be set: every {module.name} replica needs the same value "
                "(only kibitz up generates one)"
            )


def build_app(module: Module, platform: Platform) -> FastAPI:
    """The module's app, whose readiness includes every service it requires answering."""
    app = module.create_app(platform)
    for peer in module.requires:
        app.state.readiness_checks[peer] = platform.peer_check(peer)
    return app


async def serve_one(
    module: Module,
    *,
    settings: PlatformSettings,
    host: str,
    port: int,
    fd: int | None = None,
    parent_pid: int | None = None,
) -> None:
    """Run one module in this process until a signal stops it (or, as a child of `kibitz up`
    serving the socket inherited as `fd`, until the parent `parent_pid` is gone)."""
    # A child of `kibitz up` without a broker hears the events its parent relays.
    relayed = parent_pid is not None and not settings.has_broker
    platform = distributed_platform(settings, bus=RelayedBus() if relayed else None)
    check_required_peers(module, platform)
    if parent_pid is None:  # a child of `kibitz up` shares its parent's generated keys
        check_shared_settings(module)
    # Bound before anything starts, so a port in use is one line and nothing to undo.
    listening = socket.socket(fileno=fd) if fd is not None else bind_socket(host, port)
    await platform.bus.start()
    revocations = asyncio.create_task(platform.keep_revocations_current())
    try:
        server = uvicorn.Server(server_config(build_app(module, platform)))
        watch = (
            asyncio.create_task(_exit_with_parent(server, parent_pid))
            if parent_pid is not None
            else None
        )
        try:
            await server.serve(sockets=[listening])
        finally:
            if watch is not None:
                watch.cancel()
    finally:
        revocations.cancel()
        await asyncio.gather(revocations, return_exceptions=True)
        listening.close()
        await platform.close_clients()
        await platform.bus.close()


async def _exit_with_parent(server: uvicorn.Server, parent_pid: int) -> None:
    # Where the kernel cannot kill an orphan (see `die_with_parent`): stop within 1 s of the
    # parent's end. Compared with the pid the parent gave, not with getppid() read here: a
    # parent that died while this process was still importing would otherwise go unnoticed.
    while os.getppid() == parent_pid:  # noqa: ASYNC110 - no event tells of a parent gone
        await asyncio.sleep(1.0)
    server.should_exit = True
