"""`python -m kibitz.simulator [--host H] [--port N] …`: run the LLM simulator."""

from __future__ import annotations

from kibitz.simulator.server import main

if __name__ == "__main__":
    main()
