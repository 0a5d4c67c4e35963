"""GET /chat/chats/{id}/export over HTTP: a download in Markdown or JSON, only of one's own chat."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from tests.services.chat.world import Member, World

from kibitz.services.chat.export import api as export_api
from kibitz.services.chat.export.render import content_disposition


async def converse(world: World, member: Member, *contents: str, title: str | None = None) -> str:
    chat_id: str | None = None
    for content in contents:
        extra: dict[str, Any] = {"title": title} if title and chat_id is None else {}
        response = await world.send(member, content, chat_id=chat_id, **extra)
        assert response.status_code == 201, response.text
        body = response.json()
        chat_id = body["chat_id"]
        await world.wait_finished(member, chat_id, body["agent_message"]["id"])
    assert chat_id is not None
    return chat_id


async def export(
    world: World, member: Member, chat_id: str, fmt: str | None = None
) -> httpx.Response:
    params = {"format": fmt} if fmt else {}
    return await world.http.get(
        world.url(f"/chat/chats/{chat_id}/export"), params=params, headers=member.headers
    )


async def test_markdown_is_the_conversation_as_a_document(world_on: World) -> None:
    world = world_on
    alice = await world.member()
    chat_id = await converse(
        world, alice, "What is *FTS5*?", "And `bm25`?", title="Search [notes] # 1"
    )
    response = await export(world, alice, chat_id)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/markdown; charset=utf-8"
    assert response.headers["content-disposition"].startswith(
        'attachment; filename="Search notes 1.md"'
    )
    document = response.text
    lines = document.splitlines()
    assert lines[0] == r"# Search \[notes\] \# 1"
    assert document.count("**You** ·") == 2
    assert document.count("**Agent (gpt-4o-mini)** ·") == 2
    # Messages keep their own Markdown, in order.
    assert document.index("What is *FTS5*?") < document.index("And `bm25`?")
    assert "You said: What is *FTS5*?" in document


async def test_json_carries_the_chat_and_every_message(world_on: World) -> None:
    world = world_on
    alice = await world.member()
    chat_id = await converse(world, alice, "one", "two")
    response = await export(world, alice, chat_id, "json")
    assert response.status_code == 200
    assert response.headers["content-disposition"].endswith(".json")
    document = json.loads(response.content)
    assert document["format"] == "kibitz.chat.v1"
    assert document["chat"]["id"] == chat_id
    assert document["chat"]["title"] == "one"
    history = await world.http.get(world.url(f"/chat/history/{chat_id}"), headers=alice.headers)
    shown = [
        {key: value for key, value in message.items() if key != "sibling_ids"}
        for message in history.json()["messages"]
    ]
    assert document["messages"] == shown
    assert [m["sender"] for m in document["messages"]] == ["user", "agent", "user", "agent"]


async def test_a_long_chat_is_exported_whole_in_order(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = await world.member()
    chat_id = await converse(world, alice, *(f"message {n}" for n in range(6)))
    monkeypatch.setattr(export_api, "_BATCH", 5)  # more than two of the export's reads
    document = json.loads((await export(world, alice, chat_id, "json")).content)
    users = [m["content"] for m in document["messages"] if m["sender"] == "user"]
    assert users == [f"message {n}" for n in range(6)]


async def test_another_users_chat_is_not_found(world: World) -> None:
    alice, bob = await world.member(), await world.member()
    chat_id = await converse(world, alice, "private")
    for fmt in ("markdown", "json"):
        response = await export(world, bob, chat_id, fmt)
        assert response.status_code == 404
    missing = await export(world, alice, str(uuid.uuid4()))
    assert missing.status_code == 404
    bad = await export(world, alice, chat_id, "pdf")
    assert bad.status_code == 422
    anonymous = await world.http.get(world.url(f"/chat/chats/{chat_id}/export"))
    assert anonymous.status_code == 401


@pytest.mark.parametrize(
    ("title", "ascii_name"),
    [
        ("Trip to Zürich", "Trip to Z rich"),
        ('a"b\r\nContent-Type: text/html', "a b Content-Type text html"),
        ("../../etc/passwd", "etc passwd"),
        ("日本語", "chat"),
        ("x" * 300, "x" * 80),
    ],
)
def test_the_filename_is_safe_and_the_exact_title_travels_encoded(
    title: str, ascii_name: str
) -> None:
    header = content_disposition(title, "md")
    assert header.startswith(f"attachment; filename=\"{ascii_name}.md\"; filename*=UTF-8''")
    assert "\r" not in header and "\n" not in header
    exact = header.split("filename*=UTF-8''", 1)[1]
    assert unquote(exact) == f"{title[:80]}.md"
