"""The `kibitz` command: up (all-in-one), serve (one service), migrate, simulate-llm, and the
operator's tasks (auth rotate-signing-key, agents rotate-key, events replay-dead-letters,
doctor)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated
from urllib.parse import urlsplit

import typer
import uvloop
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from kibitz.kit.db.admin import connection_problem, create_database, where
from kibitz.kit.observability import configure_logging, logs_as_json
from kibitz.kit.platform import Platform
from kibitz.kit.settings import PlatformSettings, invalid_settings
from kibitz.kit.tracing import otlp_endpoint, tracing_for
from kibitz.runtime import operations
from kibitz.runtime.children import StartupError, die_with_parent
from kibitz.runtime.databases import database_url_of
from kibitz.runtime.registry import MODULE_PATHS, SERVICE_NAMES, available_modules
from kibitz.runtime.server import run_all_in_one, serve_one, tune_garbage_collection

app = typer.Typer(help="kibitz: a multi-tenant AI agent chat platform.", no_args_is_help=True)
console = Console(stderr=True)


@contextmanager
def _start_up_errors_reported() -> Iterator[None]:
    """Bad settings and a module that cannot start end the command with a line each, not a
    traceback; anything else keeps its traceback."""
    try:
        yield
    except ValidationError as error:
        lines = invalid_settings(error)
        if not lines:
            raise
        for line in lines:
            console.print(f"[red]invalid setting[/] {escape(line)}", soft_wrap=True)
        raise typer.Exit(2) from None
    except StartupError as error:
        # One line however narrow the terminal: soft wrap leaves breaking it to the terminal.
        console.print(f"[red]kibitz did not start:[/] {escape(str(error))}", soft_wrap=True)
        raise typer.Exit(1) from None


def _settings(**overrides: object) -> PlatformSettings:
    settings = PlatformSettings()
    for key, value in overrides.items():
        setattr(settings, key, value)
    configure_logging(level=settings.log_level, json=settings.log_json)
    return settings


@app.command()
def up(
    host: Annotated[str, typer.Option(help="Address the gateway listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the gateway and web UI.")] = 8000,
) -> None:
    """Run every service in this process (SQLite files under KIBITZ_DATA_DIR, in-process bus)."""
    with _start_up_errors_reported():
        settings = _settings(migrate_on_start=True)
        tune_garbage_collection()
        with tracing_for("kibitz", endpoint=settings.otlp_endpoint):
            uvloop.run(_run_until_stopped(settings, host=host, port=port))


async def _run_until_stopped(settings: PlatformSettings, *, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with run_all_in_one(settings=settings, host=host, port=port) as stack:
        if console.is_terminal:
            console.print(_start_up_summary(stack.gateway_url, settings), highlight=False)
        else:
            console.print(f"kibitz is up on {stack.gateway_url}", highlight=False)
        await stop.wait()
    console.print("kibitz stopped")


def _start_up_summary(url: str, settings: PlatformSettings) -> str:
    """What a person at a terminal needs after `kibitz up`: the address first, then the rest."""
    logs = "JSON" if logs_as_json(settings.log_json) else "readable (KIBITZ_LOG_JSON=true: JSON)"
    return "\n".join(
        [
            f"[bold green]kibitz is up:[/] [bold]{url}[/]",
            f"  API reference  {url}/docs",
            f"  data           {escape(str(settings.data_dir.resolve()))}",
            f"  logs           {logs}, level {settings.log_level}",
            f"  traces         {_traces_line(settings)}",
            "  Ctrl+C stops it.",
        ]
    )


def _traces_line(settings: PlatformSettings) -> str:
    endpoint = otlp_endpoint(settings.otlp_endpoint)
    if endpoint is None:
        return "off (KIBITZ_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT turns them on)"
    # Scheme, host and port only: an endpoint's user info or query may hold a credential.
    parts = urlsplit(endpoint)
    port = f":{parts.port}" if parts.port else ""
    return f"OTLP to {escape(f'{parts.scheme}://{parts.hostname}{port}')}"


@app.command()
def serve(
    service: Annotated[str, typer.Argument(help=f"One of: {', '.join(MODULE_PATHS)}.")],
    host: Annotated[
        str,
        typer.Option(
            help="Address to listen on: every interface by default, as a container or a "
            "load balancer's target needs; 127.0.0.1 keeps it local."
        ),
    ] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    fd: Annotated[
        int | None,
        typer.Option(
            help="Serve on this inherited listening socket (how `kibitz up` runs it).", hidden=True
        ),
    ] = None,
    parent_pid: Annotated[
        int | None,
        typer.Option(help="End with this parent process (how `kibitz up` runs it).", hidden=True),
    ] = None,
) -> None:
    """Run one service (distributed mode: addresses of the others from KIBITZ_<SERVICE>_URL)."""
    if parent_pid is not None:
        die_with_parent(parent_pid)
    modules = available_modules([service]) if service in MODULE_PATHS else {}
    if service not in modules:
        console.print(f"[red]unknown service[/] {service!r}; choose from {', '.join(MODULE_PATHS)}")
        raise typer.Exit(2)
    with _start_up_errors_reported():
        settings = _settings()
        tune_garbage_collection()
        with tracing_for(f"kibitz-{service}", endpoint=settings.otlp_endpoint):
            uvloop.run(
                serve_one(
                    modules[service],
                    settings=settings,
                    host=host,
                    port=port,
                    fd=fd,
                    parent_pid=parent_pid,
                )
            )


@app.command()
def migrate(
    service: Annotated[str | None, typer.Argument(help="Only this service.")] = None,
    create_databases: Annotated[
        bool,
        typer.Option(
            "--create-databases",
            help="First create each service's PostgreSQL database that does not exist yet "
            "(its URL's user needs the CREATEDB privilege).",
        ),
    ] = False,
) -> None:
    """Apply pending database migrations for every service (or one)."""
    names = [service] if service else SERVICE_NAMES
    unknown = [name for name in names if name not in SERVICE_NAMES]
    if unknown:
        console.print(
            f"[red]unknown service[/] {unknown[0]!r}; choose from {', '.join(SERVICE_NAMES)}"
        )
        raise typer.Exit(2)
    with _start_up_errors_reported():
        asyncio.run(_migrate(_settings(), names, create_databases=create_databases))


async def _migrate(settings: PlatformSettings, names: list[str], *, create_databases: bool) -> None:
    platform = Platform(settings=settings)
    for name, module in available_modules(names).items():
        if module.migrate is None:
            continue
        url = database_url_of(name, settings)
        try:
            if create_databases and await create_database(url):
                console.print(f"created database {escape(where(url))}", highlight=False)
            await module.migrate(platform)
        except Exception as error:
            problem = connection_problem(url, error)
            if problem is None:
                raise
            hint = "" if create_databases else " (kibitz migrate --create-databases creates it)"
            hint = hint if "does not exist" in problem else ""
            console.print(f"[red]{name}:[/] {escape(problem)}{hint}", highlight=False)
            raise typer.Exit(1) from None
        console.print(f"migrated [bold]{name}[/]")


auth_commands = typer.Typer(help="Operator tasks of the auth service.", no_args_is_help=True)
events_commands = typer.Typer(help="Operator tasks of the event bus.", no_args_is_help=True)
agents_commands = typer.Typer(help="Operator tasks of the agents service.", no_args_is_help=True)
app.add_typer(auth_commands, name="auth")
app.add_typer(agents_commands, name="agents")
app.add_typer(events_commands, name="events")


@auth_commands.command("rotate-signing-key")
def rotate_signing_key() -> None:
    """Sign new access tokens with a new key; the old keys verify until their tokens expire."""
    with _start_up_errors_reported(), _database_problems_reported("auth"):
        rotated = asyncio.run(operations.rotate_signing_key(_settings()))
    console.print(
        f"new signing key {rotated.kid}: published now, signs from "
        f"{rotated.signs_from:%H:%M:%S} UTC (each auth replica within a minute of that)",
        highlight=False,
    )
    for kid, until in rotated.verifying_until.items():
        console.print(
            f"old key {kid} verifies until {until:%Y-%m-%d %H:%M:%S} UTC", highlight=False
        )


@agents_commands.command("rotate-key")
def rotate_agents_key() -> None:
    """Re-encrypt users' stored provider keys under the first key of
    KIBITZ_AGENTS_ENCRYPTION_KEY (new,old: the old keys decrypt until every key is rotated)."""
    with _start_up_errors_reported(), _database_problems_reported("agents"):
        try:
            report, key_count = asyncio.run(operations.rotate_agents_key(_settings()))
        except ValueError as error:
            console.print(f"[red]cannot rotate:[/] {escape(str(error))}")
            raise typer.Exit(2) from None
    # Counts only: neither a stored key nor an encryption key is ever printed.
    console.print(
        f"re-encrypted {report.rotated} stored provider keys under the first key of "
        "KIBITZ_AGENTS_ENCRYPTION_KEY",
        highlight=False,
    )
    if report.changed_meanwhile:
        console.print(
            f"{report.changed_meanwhile} changed while this ran (an agent was edited): run it "
            "again once every agents replica runs with the new key first",
            highlight=False,
        )
    if report.unreadable:
        console.print(
            f"[red]{report.unreadable} cannot be decrypted with any configured key:[/] left as "
            "they are; add the key they were stored under to the setting and run again",
            highlight=False,
        )
        raise typer.Exit(1)
    if key_count > 1 and not report.changed_meanwhile:
        console.print(
            "the other keys may now leave the setting, once every agents replica runs with "
            "the new key first",
            highlight=False,
        )


@events_commands.command("replay-dead-letters")
def replay_dead_letters(
    service: Annotated[str | None, typer.Option(help="Only this service's dead letters.")] = None,
) -> None:
    """Publish parked events again on the bus (the consumers that handled them skip them)."""
    consumers = list(operations.dead_letter_tables())
    if service is not None and service not in consumers:
        console.print(
            f"[red]no dead letters kept by[/] {service!r}; services that consume events: "
            f"{', '.join(consumers)}"
        )
        raise typer.Exit(2)
    names = [service] if service else consumers
    with _start_up_errors_reported(), _database_problems_reported(*names):
        try:
            reports = asyncio.run(operations.replay_dead_letters(_settings(), services=names))
        except ValueError as error:
            console.print(f"[red]cannot replay:[/] {escape(str(error))}")
            raise typer.Exit(1) from None
    for report in reports:
        line = f"{report.service}: replayed {report.replayed}"
        if report.too_recent:
            line += f", {report.too_recent} parked under 3 minutes ago (run again shortly)"
        if report.too_old:
            line += f", {report.too_old} too old to replay safely (handle them by hand)"
        console.print(line, highlight=False)


@app.command()
def doctor() -> None:
    """Check settings, databases, the broker, Redis and service addresses; a line per problem."""
    problems = operations.settings_problems()
    if not problems:
        problems = asyncio.run(operations.dependency_problems(_settings()))
    for problem in problems:
        console.print(f"[red]✗[/] {escape(problem)}", highlight=False)
    if problems:
        raise typer.Exit(1)
    console.print("[green]✓[/] settings are valid and every dependency answers")


@contextmanager
def _database_problems_reported(*services: str) -> Iterator[None]:
    """A database that is missing or unreachable ends the command with one line."""
    try:
        yield
    except Exception as error:
        settings = PlatformSettings()
        for service in services:
            problem = connection_problem(database_url_of(service, settings), error)
            if problem is not None:
                console.print(f"[red]{service}:[/] {escape(problem)}", highlight=False)
                raise typer.Exit(1) from None
        raise


@app.command("simulate-llm")
def simulate_llm(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8900,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    ttft_ms: Annotated[float | None, typer.Option(help="Time to first token, ms.")] = None,
    gap_ms: Annotated[float | None, typer.Option(help="Gap between tokens, ms.")] = None,
    tokens_per_second: Annotated[float | None, typer.Option(help="Overrides --gap-ms.")] = None,
    reply: Annotated[str | None, typer.Option(help="Fixed reply text.")] = None,
    tokens: Annotated[int | None, typer.Option(help="Fixed reply length in tokens.")] = None,
) -> None:
    """Run the LLM simulator (OpenAI and Anthropic wire protocols) for tests and benchmarks."""
    from kibitz.simulator.config import SimulatorSettings
    from kibitz.simulator.server import serve

    overrides: dict[str, object] = {
        "ttft_ms": ttft_ms,
        "gap_ms": gap_ms,
        "tokens_per_second": tokens_per_second,
        "reply": reply,
        "tokens": tokens,
    }
    settings = SimulatorSettings.model_validate(
        {key: value for key, value in overrides.items() if value is not None}
    )
    console.print(
        f"LLM simulator on http://{host}:{port} (OpenAI and Anthropic APIs under /v1)\n"
        f"Try it with kibitz: KIBITZ_AGENTS_ALLOWED_PRIVATE_HOSTS={host} kibitz up, then an "
        f"agent with provider custom, base URL http://{host}:{port}/v1 and any model name",
        highlight=False,
    )
    serve(settings, host=host, port=port)


if __name__ == "__main__":
    app()
