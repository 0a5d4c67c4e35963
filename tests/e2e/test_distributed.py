"""The distributed mode as deploy/compose.yaml runs it, with real processes on this machine:
`kibitz migrate`, then `kibitz serve` per service (two chat replicas), PostgreSQL databases,
NATS JetStream for events, Redis for rate limits and stream fan-out."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from tests.fixtures.processes import KIBITZ, free_port, kibitz_processes, wait_healthy
from tests.fixtures.stack import DEFAULT_PASSWORD, postgres_databases

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis, pytest.mark.nats]

SERVICES = ["auth", "tenants", "users", "agents", "chat"]


def _sse_events(response: httpx.Response) -> list[tuple[str, dict]]:
    events, name = [], "message"
    for line in response.iter_lines():
        if line.startswith("event:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            events.append((name, json.loads(line.split(":", 1)[1])))
            if name in ("message.completed", "message.failed"):
                break
    return events


def _eventually(check, *, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


async def test_every_service_in_its_own_process_serves_a_whole_conversation(
    tmp_path: Path,
) -> None:
    async with postgres_databases(SERVICES) as database_urls:
        ports = {name: free_port() for name in [*SERVICES, "chat2", "gateway"]}
        env = {
            "KIBITZ_INTERNAL_TOKEN": secrets.token_urlsafe(32),
            # Run apart, agents and auth need the keys every replica shares (issue 15, finding 11).
            "KIBITZ_AGENTS_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "KIBITZ_AUTH_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "KIBITZ_BUS_URL": f"nats://127.0.0.1:4222?prefix=t{uuid.uuid4().hex[:10]}",
            "KIBITZ_REDIS_URL": "redis://127.0.0.1:6379/0",
            "KIBITZ_DATA_DIR": str(tmp_path / "data"),
            "KIBITZ_LOG_LEVEL": "WARNING",
            **{f"KIBITZ_{n.upper()}_DATABASE_URL": url for n, url in database_urls.items()},
            **{f"KIBITZ_{n.upper()}_URL": f"http://127.0.0.1:{ports[n]}" for n in SERVICES},
        }
        env["KIBITZ_CHAT_URL"] += f",http://127.0.0.1:{ports['chat2']}"
        migrated = subprocess.run(
            [KIBITZ, "migrate"], env={**__import__("os").environ, **env}, capture_output=True
        )
        assert migrated.returncode == 0, migrated.stderr.decode()[-2000:]

        commands = {
            n: ["serve", n, "--host", "127.0.0.1", "--port", str(ports[n])] for n in SERVICES
        }
        commands["chat2"] = ["serve", "chat", "--host", "127.0.0.1", "--port", str(ports["chat2"])]
        commands["gateway"] = [
            "serve",
            "gateway",
            "--host",
            "127.0.0.1",
            "--port",
            str(ports["gateway"]),
        ]
        with kibitz_processes(commands, env=env, log_dir=tmp_path) as processes:
            for name, process in processes.items():
                wait_healthy(f"http://127.0.0.1:{ports[name]}", process)
            _converse(f"http://127.0.0.1:{ports['gateway']}")


def _converse(gateway: str) -> None:
    with httpx.Client(base_url=gateway, timeout=30) as client:
        email = f"dist-{uuid.uuid4().hex[:8]}@example.com"
        registered = client.post(
            "/auth/register",
            json={"email": email, "password": DEFAULT_PASSWORD, "tenant_name": "Distributed"},
        )
        assert registered.status_code == 201, registered.text
        headers = {"Authorization": f"Bearer {registered.json()['access_token']}"}

        profile = client.get("/users/me", headers=headers)
        assert profile.status_code == 200, profile.text
        assert profile.json()["email"] == email
        assert profile.json()["subscription"]["plan"] == "basic"

        agent = client.post(
            "/agents/create",
            headers=headers,
            json={
                "name": "Parrot",
                "llm_provider": "echo",
                "model": "echo",
                "instructions": "Echo.",
            },
        )
        assert agent.status_code == 201, agent.text

        with client.stream(
            "POST",
            "/chat/send",
            headers={**headers, "Accept": "text/event-stream"},
            json={"agent_id": agent.json()["id"], "content": "hello from every process"},
        ) as streamed:
            assert streamed.status_code in (200, 201), streamed.read()
            events = _sse_events(streamed)
        names = [name for name, _ in events]
        assert "message.delta" in names and names[-1] == "message.completed"
        chat_id = next(data["chat_id"] for _, data in events if "chat_id" in data)

        history = client.get(f"/chat/history/{chat_id}", headers=headers).json()
        reply = history["messages"][-1]
        assert reply["sender"] == "agent" and reply["status"] == "complete"
        assert "hello from every process" in reply["content"]

        # Metering travels over NATS from chat to tenants.
        def metered() -> bool:
            usage = client.get("/tenants/usage", headers=headers).json()
            return "messages" in json.dumps(usage) and usage != {}

        assert _eventually(metered)
