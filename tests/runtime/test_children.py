from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from kibitz.kit.settings import PlatformSettings
from kibitz.runtime.server import run_all_in_one
from tests.fixtures.processes import free_port, wait_healthy
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


async def test_a_module_that_publishes_events_cannot_run_apart(tmp_path: Path) -> None:
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


# --- a child never outlives `kibitz up` -----------------------------------------------------


def _children_of(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid …: comm may hold spaces, so split after its closing paren.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie holds nothing but its exit status


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _child_port(pid: int) -> int:
    """The port of the socket a `kibitz serve --fd N` child inherited (from /proc/net/tcp)."""
    arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    fd = arguments[arguments.index(b"--fd") + 1].decode()
    inode = os.readlink(f"/proc/{pid}/fd/{fd}").removeprefix("socket:[").removesuffix("]")
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[9] == inode:
            return int(fields[1].rsplit(":", 1)[1], 16)
    raise AssertionError("the child's socket is not a TCP socket")


def _start_kibitz_up(tmp_path: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("KIBITZ_")},
        "KIBITZ_DATA_DIR": str(tmp_path / "data"),
        "KIBITZ_LOG_LEVEL": "WARNING",
        "KIBITZ_OWN_PROCESSES": "agents",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "kibitz", "up", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _serving_children(parent: subprocess.Popen[bytes], timeout: float = 90.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert parent.poll() is None, "kibitz up stopped"
        children = [
            pid
            for pid in _children_of(parent.pid)
            if b"serve" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        if children:
            return children
        time.sleep(0.01)
    raise AssertionError("kibitz up started no child")


def _assert_gone(children: list[int], ports: list[int], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(_running(pid) for pid in children) and all(_port_free(p) for p in ports):
            return
        time.sleep(0.1)
    for pid in children:
        if _running(pid):
            os.kill(pid, signal.SIGKILL)
    raise AssertionError(f"children {children} outlived their parent (ports {ports})")


@pytest.mark.slow
def test_a_child_killed_parent_mid_start_up_leaves_no_orphan(tmp_path: Path) -> None:
    # The parent dies while its child is still importing: nothing in the child runs yet.
    port = free_port()
    parent = _start_kibitz_up(tmp_path, port)
    try:
        children = _serving_children(parent)
        ports = [port, *(_child_port(pid) for pid in children)]
    finally:
        parent.kill()
        parent.wait()
    _assert_gone(children, ports)


@pytest.mark.slow
def test_a_child_never_outlives_a_parent_killed_outright(tmp_path: Path) -> None:
    port = free_port()
    parent = _start_kibitz_up(tmp_path, port)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", parent)
        children = _serving_children(parent)
        ports = [port, *(_child_port(pid) for pid in children)]
        # The parent asked to stop, then killed a second later, mid-shutdown (as found).
        parent.send_signal(signal.SIGTERM)
        time.sleep(1.0)
    finally:
        parent.kill()
        parent.wait()
    _assert_gone(children, ports)
