"""`store: true` and `X-Kibitz-Chat-Id`: an OpenAI-compatible completion kept as a kibitz chat
(with the official `openai` SDK as the client), found in the user's chats once the answer ends."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.fixtures.simulator import RunningSimulator
from tests.fixtures.stack import Account, Stack, start_stack
from tests.services.agents.conftest import agents_env
from tests.services.agents.openai_compat.test_api import new_agent, new_key, sdk, sim

__all__ = ["sim"]  # the module's simulator fixture

MODULES = ["auth", "tenants", "agents", "chat", "gateway"]


async def chats_of(stack: Stack, account: Account) -> list[dict[str, Any]]:
    listed = await stack.http.get(f"{stack.entry}/chat/chats", headers=account.headers)
    assert listed.status_code == 200, listed.text
    return list(listed.json()["items"])


async def history(stack: Stack, account: Account, chat_id: str) -> list[tuple[str, str]]:
    found = await stack.http.get(f"{stack.entry}/chat/history/{chat_id}", headers=account.headers)
    assert found.status_code == 200, found.text
    return [(m["sender"], m["content"]) for m in found.json()["messages"]]


async def test_stored_completions_become_chats_of_their_user(
    tmp_path: Path, sim: RunningSimulator
) -> None:
    async with start_stack(
        MODULES, data_dir=tmp_path, env=agents_env(sim), own_processes=["agents"]
    ) as stack:
        alice, mallory = await stack.register(), await stack.register()
        tutor = await new_agent(stack, alice)
        async with sdk(stack, (await new_key(stack, alice))["key"]) as client:
            # Not kept unless asked.
            await client.chat.completions.create(
                model=tutor["id"], messages=[{"role": "user", "content": "Just asking"}]
            )
            assert await chats_of(stack, alice) == []

            raw = await client.chat.completions.with_raw_response.create(
                model=tutor["id"],
                messages=[
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "What is a monad?"},
                ],
                store=True,
            )
            answer = raw.parse()
            chat_id = raw.headers["x-kibitz-chat-id"]
            chats = await chats_of(stack, alice)
            assert [(c["id"], c["agent_id"]) for c in chats] == [(chat_id, tutor["id"])]
            assert chats[0]["title"] == "What is a monad?"
            reply = answer.choices[0].message.content
            assert reply
            assert await history(stack, alice, chat_id) == [
                ("user", "What is a monad?"),
                ("agent", reply),
            ]

            # The same chat, streamed: the turns since the last reply are appended.
            stream = await client.chat.completions.create(
                model=tutor["id"],
                messages=[
                    {"role": "user", "content": "What is a monad?"},
                    {"role": "assistant", "content": reply},
                    {"role": "user", "content": "Shorter, please."},
                ],
                stream=True,
                extra_headers={"X-Kibitz-Chat-Id": chat_id},
            )
            streamed = "".join(
                [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
            )
            assert streamed
            assert (await history(stack, alice, chat_id))[2:] == [
                ("user", "Shorter, please."),
                ("agent", streamed),
            ]
            assert len(await chats_of(stack, alice)) == 1

            # A chat that is not hers (or no chat at all) is a 404, and nothing is kept there.
            mallorys = await stack.http.post(
                f"{stack.entry}/chat/send",
                json={"content": "mine", "agent_id": (await new_agent(stack, mallory))["id"]},
                headers=mallory.headers,
            )
            assert mallorys.status_code == 201, mallorys.text
            for foreign in (mallorys.json()["chat_id"], str(uuid.uuid4()), "not-a-chat"):
                with pytest.raises(openai.NotFoundError):
                    await client.chat.completions.create(
                        model=tutor["id"],
                        messages=[{"role": "user", "content": "Into yours"}],
                        extra_headers={"X-Kibitz-Chat-Id": foreign},
                    )
            theirs = await history(stack, mallory, mallorys.json()["chat_id"])
            assert all(content != "Into yours" for _, content in theirs)
