"""Agents hear `auth.account_deleted`: the deleted account's agents go, everyone else's stay; with
agents in the test's process, apart as `kibitz up` runs it (its parent relays the events), and
apart on NATS JetStream (it connects to the broker itself)."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from kibitz.runtime.databases import database_url_of
from tests.fixtures.stack import Account, Stack, start_stack

MODULES = ["auth", "tenants", "agents"]


async def _create_agent(stack: Stack, account: Account, name: str) -> str:
    response = await stack.http.post(
        f"{stack.url('agents')}/agents/create",
        headers=account.headers,
        json={"name": name, "llm_provider": "echo", "model": "echo", "instructions": "Repeat."},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _agents_of(stack: Stack, account: Account) -> int:
    """The account's agent rows, read from the agents database (its token may be refused)."""
    engine = create_async_engine(database_url_of("agents", stack.running.platform.settings))
    try:
        async with engine.connect() as connection:
            query = text("SELECT count(*) FROM agents WHERE user_id = :user_id")
            user_id = uuid.UUID(str(account.user["id"])).hex
            return int((await connection.execute(query, {"user_id": user_id})).scalar_one())
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("bus", "apart"),
    [
        pytest.param("memory", [], id="in-process"),
        pytest.param("memory", ["agents"], id="apart-relayed"),
        pytest.param("nats", ["agents"], id="apart-nats", marks=pytest.mark.nats),
    ],
)
async def test_a_deleted_accounts_agents_are_erased(
    tmp_path: Path, bus: str, apart: list[str]
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    env = {"KIBITZ_BUS_URL": f"nats://127.0.0.1:4222?prefix={prefix}" if bus == "nats" else bus}
    async with start_stack(MODULES, data_dir=tmp_path, env=env, own_processes=apart) as stack:
        leaving, staying = await stack.register(), await stack.register()
        await _create_agent(stack, leaving, "First")
        await _create_agent(stack, leaving, "Second")
        kept = await _create_agent(stack, staying, "Mine")
        assert await _agents_of(stack, leaving) == 2

        await stack.delete_account(leaving)

        # A few hundred ms on the bus; 10 s is a consumer that never heard it.
        for _ in range(200):
            if await _agents_of(stack, leaving) == 0:
                break
            await asyncio.sleep(0.05)
        assert await _agents_of(stack, leaving) == 0
        mine = await stack.http.get(f"{stack.url('agents')}/agents/my", headers=staying.headers)
        assert [agent["id"] for agent in mine.json()["items"]] == [kept]


async def test_an_account_deleted_while_the_child_restarts_is_erased_by_the_new_one(
    tmp_path: Path,
) -> None:
    """The parent owns the child's socket: the event it relays while no child runs waits in the
    socket's queue for the next one."""
    async with start_stack(MODULES, data_dir=tmp_path, own_processes=["agents"]) as stack:
        leaving = await stack.register()
        await _create_agent(stack, leaving, "First")
        (child,) = stack.running.children
        first = child.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)

        await stack.delete_account(leaving)
        # A restart takes the child's start-up (imports, migrations): seconds, not minutes.
        for _ in range(600):
            if await _agents_of(stack, leaving) == 0:
                break
            await asyncio.sleep(0.05)
        assert await _agents_of(stack, leaving) == 0
        assert child.pid != first
