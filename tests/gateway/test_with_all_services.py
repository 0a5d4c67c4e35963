"""The whole stack behind the gateway: a chat reply streamed over SSE and over a WebSocket."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from websockets.asyncio.client import connect

from tests.fixtures.stack import start_stack

ALL = ["auth", "tenants", "users", "agents", "chat", "knowledge", "billing", "gateway"]


async def test_a_chat_reply_streams_through_the_gateway_by_sse_and_websocket(
    tmp_path: Path,
) -> None:
    async with start_stack(ALL, data_dir=tmp_path) as stack:
        account = await stack.register()
        entry = stack.entry
        agent = await stack.http.post(
            f"{entry}/agents/create",
            json={"name": "Parrot", "llm_provider": "echo", "model": "echo", "instructions": "-"},
            headers=account.headers,
        )
        assert agent.status_code == 201, agent.text

        events = []
        async with stack.http.stream(
            "POST",
            f"{entry}/chat/send",
            json={"content": "hello through the gateway", "agent_id": agent.json()["id"]},
            headers={**account.headers, "Accept": "text/event-stream"},
        ) as response:
            assert response.status_code == 201
            assert response.headers["content-type"].startswith("text/event-stream")
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    events.append(line.removeprefix("event: "))
                if "message.completed" in events:
                    break
        assert "message.delta" in events and events[-1] == "message.completed"

        chats = await stack.http.get(f"{entry}/chat/chats", headers=account.headers)
        chat_id = chats.json()["items"][0]["id"]
        socket_url = "ws" + entry.removeprefix("http") + f"/chat/ws/{chat_id}"
        async with connect(socket_url, subprotocols=["bearer", account.access_token]) as ws:  # type: ignore[list-item]
            sent = await stack.http.post(
                f"{entry}/chat/send",
                json={"content": "and once more", "chat_id": chat_id},
                headers=account.headers,
            )
            assert sent.status_code == 201, sent.text
            first = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert first["event"].startswith("message.")


async def test_the_reference_page_covers_every_service(tmp_path: Path) -> None:
    async with start_stack(ALL, data_dir=tmp_path) as stack:
        page = (await stack.http.get(f"{stack.entry}/docs")).text
        for service in ("auth", "users", "tenants", "agents", "chat", "knowledge", "billing"):
            assert f'id="{service}"' in page
            assert f"/{service}/" in page
        assert "not reachable" not in page and "not part of this deployment" not in page
