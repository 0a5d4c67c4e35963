"""The simulator's HTTP app: OpenAI chat completions and embeddings (`openai_wire.py`),
Anthropic messages (`anthropic_wire.py`), and `/_sim` controls."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kibitz.simulator import anthropic_wire, openai_wire
from kibitz.simulator.config import SimulatorSettings
from kibitz.simulator.shared import Simulator

Endpoint = Callable[[Request], Awaitable[Response]]


def create_app(settings: SimulatorSettings | None = None) -> Starlette:
    """The simulator as an ASGI app."""
    simulator = Simulator(settings or SimulatorSettings())

    def bound(endpoint: Callable[[Simulator, Request], Awaitable[Response]]) -> Endpoint:
        return partial(endpoint, simulator)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    routes = [
        Route("/v1/chat/completions", bound(openai_wire.chat_completions), methods=["POST"]),
        Route("/v1/messages", bound(anthropic_wire.messages), methods=["POST"]),
        Route("/v1/models", bound(openai_wire.list_models), methods=["GET"]),
        Route("/v1/embeddings", bound(openai_wire.embeddings), methods=["POST"]),
        Route("/_sim/requests", simulator.recorded, methods=["GET", "DELETE"]),
        Route("/_sim/faults", simulator.queue_faults, methods=["POST", "DELETE"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.state.simulator = simulator
    return app
