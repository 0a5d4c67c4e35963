"""Running the simulator: a plain uvicorn server, from the CLI or `python -m kibitz.simulator`."""

from __future__ import annotations

import argparse

import uvicorn

from kibitz.simulator.app import create_app
from kibitz.simulator.config import SimulatorSettings


def serve(settings: SimulatorSettings, *, host: str = "127.0.0.1", port: int = 8900) -> None:
    """Serve the simulator until interrupted."""
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=30,
        backlog=4096,
    )


def main(argv: list[str] | None = None) -> None:
    """Parse options (defaults from `KIBITZ_SIM_…`) and serve."""
    parser = argparse.ArgumentParser(prog="python -m kibitz.simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--ttft-ms", type=float)
    parser.add_argument("--gap-ms", type=float)
    parser.add_argument("--tokens-per-second", type=float)
    parser.add_argument("--reply")
    parser.add_argument("--tokens", type=int)
    args = parser.parse_args(argv)
    overrides = {
        key: value
        for key, value in vars(args).items()
        if key not in ("host", "port") and value is not None
    }
    serve(SimulatorSettings(**overrides), host=args.host, port=args.port)
