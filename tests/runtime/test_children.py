from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import httpx
import pytest

from kibitz.kit.settings import PlatformSettings
from kibitz.runtime.server import run_all_in_one
from tests.fixtures.stack import start_stack


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def _echo_reply(http: httpx.AsyncClient, stack_entry: str, headers: dict[str, str]) -> str:
    created = await http.post(
        f"{stack_entry}/agents/create",
        json={"name": "Echo", "llm_provider": "echo", "model": "echo"},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    answer = await http.post(
        f"{stack_entry}/agents/respond",
        json={"agent_id": created.json()["id"], "messages": [{"role": "user", "content": "hi"}]},
        headers=headers,
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["content"])


async def test_agents_in_a_process_of_its_own_serve_through_the_gateway(tmp_path: Path) -> None:
    async with start_stack(
        ["auth", "tenants", "agents", "gateway"], data_dir=tmp_path, own_processes=["agents"]
    ) as stack:
        (child,) = stack.running.children
        assert child.name == "agents" and "agents" not in stack.running.apps
        assert child.pid is not None and child.pid != os.getpid() and _alive(child.pid)
        account = await stack.register()
        assert await _echo_reply(stack.http, stack.entry, account.headers) == "hi"
        pid = child.pid
    assert not _alive(pid)  # stopped with the stack


async def test_a_child_that_dies_is_started_again_on_the_same_address(tmp_path: Path) -> None:
    async with start_stack(
        ["auth", "agents", "gateway"], data_dir=tmp_path, own_processes=["agents"]
    ) as stack:
        (child,) = stack.running.children
        first = child.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        for _ in range(200):
            if child.pid != first:
                break
            await asyncio.sleep(0.05)
        assert child.pid != first
        for _ in range(200):  # the new process answers on the socket the parent kept
            try:
                if (await stack.http.get(f"{child.url}/healthz")).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
        account = await stack.register()
        assert await _echo_reply(stack.http, stack.entry, account.headers) == "hi"


async def test_a_module_that_uses_the_bus_cannot_run_apart(tmp_path: Path) -> None:
    settings = PlatformSettings(data_dir=tmp_path, own_processes=["chat"])
    with pytest.raises(ValueError, match="chat cannot run in a process of its own"):
        async with run_all_in_one(settings=settings, port=0, modules=["auth", "chat"]):
            pass


def test_own_processes_reads_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIBITZ_OWN_PROCESSES", " agents , ")
    assert PlatformSettings().own_processes == ["agents"]
    monkeypatch.setenv("KIBITZ_OWN_PROCESSES", "")
    assert PlatformSettings().own_processes == []
    monkeypatch.delenv("KIBITZ_OWN_PROCESSES")
    assert PlatformSettings().own_processes == ["agents", "knowledge"]
