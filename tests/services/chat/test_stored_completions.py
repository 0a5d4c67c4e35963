"""Chat's internal route that keeps OpenAI-compatible completions as chats: once per completion,
only for kibitz services, only in the user's own chats."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from tests.fixtures.stack import Account, Stack, start_stack

from kibitz.kit.http.client import INTERNAL_TOKEN_HEADER
from kibitz.kit.ids import new_id

MODULES = ["auth", "tenants", "agents", "chat"]


def completion(account: Account, chat_id: uuid.UUID, *, new_chat: bool) -> dict[str, Any]:
    return {
        "completion_id": f"chatcmpl-{uuid.uuid4().hex}",
        "tenant_id": account.tenant_id,
        "user_id": account.user["id"],
        "agent_id": str(uuid.uuid4()),
        "chat_id": str(chat_id),
        "new_chat": new_chat,
        "turns": [
            {"id": str(new_id()), "sender": "user", "content": "Hello there"},
            {"id": str(new_id()), "sender": "agent", "content": "Hi!"},
        ],
        "model": "gpt-4o-mini",
        "finish_reason": "stop",
        "input_tokens": 3,
        "output_tokens": 2,
    }


async def keep(stack: Stack, body: dict[str, Any], *, token: str | None = None) -> Any:
    return await stack.http.post(
        f"{stack.url('chat')}/chat/internal/completions",
        json=body,
        headers={INTERNAL_TOKEN_HEADER: token or stack.running.platform.internal_token},
    )


async def test_a_completion_is_kept_once_and_only_in_its_users_chat(tmp_path: Path) -> None:
    async with start_stack(MODULES, data_dir=tmp_path) as stack:
        alice, bob = await stack.register(), await stack.register()
        chat_id = new_id()
        body = completion(alice, chat_id, new_chat=True)
        first, again = await keep(stack, body), await keep(stack, body)
        assert (first.status_code, first.json()["stored"]) == (200, 2), first.text
        assert (again.status_code, again.json()["stored"]) == (200, 0), again.text
        found = await stack.http.get(
            f"{stack.url('chat')}/chat/history/{chat_id}", headers=alice.headers
        )
        assert found.status_code == 200, found.text
        messages = found.json()["messages"]
        assert [(m["sender"], m["content"], m["status"]) for m in messages] == [
            ("user", "Hello there", "complete"),
            ("agent", "Hi!", "complete"),
        ]
        # A later completion in the same chat continues its branch.
        later = completion(alice, chat_id, new_chat=False)
        assert (await keep(stack, later)).status_code == 200
        found = await stack.http.get(
            f"{stack.url('chat')}/chat/history/{chat_id}", headers=alice.headers
        )
        chained = found.json()["messages"]
        assert len(chained) == 4
        assert [m["parent_id"] for m in chained] == [None, *(m["id"] for m in chained[:-1])]
        # Someone else's chat, as an existing chat or as a "new" one with its id: 404.
        for new_chat in (False, True):
            refused = await keep(stack, completion(bob, chat_id, new_chat=new_chat))
            assert refused.status_code == 404, refused.text
        # An existing chat must exist.
        missing = await keep(stack, completion(alice, new_id(), new_chat=False))
        assert missing.status_code == 404
        # Not for the public.
        forged = await keep(stack, completion(alice, new_id(), new_chat=True), token="forged")
        assert forged.status_code == 403
