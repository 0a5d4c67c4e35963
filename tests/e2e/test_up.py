"""`kibitz up` as a user runs it: starts, serves, registers a user over HTTP, stops on Ctrl+C."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_kibitz_up_serves_registers_a_user_and_stops_cleanly(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("KIBITZ_")},
        "KIBITZ_DATA_DIR": str(tmp_path / "data"),
        "KIBITZ_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "kibitz", "up", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "kibitz up did not start in time"
            time.sleep(0.2)

        registered = httpx.post(
            f"{base}/auth/register",
            json={"email": "newcomer@example.com", "password": "correct horse battery staple"},
            timeout=30,
        )
        assert registered.status_code == 201, registered.text
        token = registered.json()["access_token"]
        me = httpx.get(f"{base}/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert me.status_code == 200 and me.json()["email"] == "newcomer@example.com"
        # Without a web build, the root explains how to make one instead of failing.
        root = httpx.get(base, headers={"Accept": "text/html"}, timeout=10)
        assert root.status_code == 200
        assert (tmp_path / "data").is_dir()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    output = process.stdout.read().decode() if process.stdout else ""
    assert code == 0, output
    assert "Traceback" not in output, output


@pytest.mark.slow
@pytest.mark.parametrize(
    ("variable", "value", "code", "also"),
    [
        # Read in this process: refused before anything starts.
        ("KIBITZ_CHAT_MAX_CONCURRENT_GENERATIONS", "-7", 2, None),
        # Read by the agents child process: it says why, the parent says it did not start.
        ("KIBITZ_AGENTS_READ_TIMEOUT_SECONDS", "soon", 1, "agents stopped during start-up"),
    ],
)
def test_kibitz_up_refuses_a_bad_setting_in_a_line_naming_it(
    tmp_path: Path, variable: str, value: str, code: int, also: str | None
) -> None:
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("KIBITZ_")},
        "KIBITZ_DATA_DIR": str(tmp_path / "data"),
        "KIBITZ_LOG_LEVEL": "WARNING",
        variable: value,
    }
    finished = subprocess.run(
        [sys.executable, "-m", "kibitz", "up", "--port", str(_free_port())],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    said = " ".join(finished.stderr.split())  # the console wraps long lines
    assert finished.returncode == code, said
    assert f"invalid setting {variable}: Input should be" in said
    assert "Traceback" not in said
    assert value not in said.replace(variable, "")
    if also:
        assert also in said


def _run_at_a_terminal(arguments: list[str], env: dict[str, str], cwd: Path) -> str:
    """Run `kibitz` on a pseudo-terminal until it says it is up, then Ctrl+C; what it printed."""
    import pty
    import select

    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "kibitz", *arguments],
        cwd=cwd,
        env=env,
        stdin=follower,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    printed = b""
    deadline = time.monotonic() + 60
    try:
        while b"Ctrl+C stops it." not in printed and time.monotonic() < deadline:
            if select.select([leader], [], [], 0.5)[0]:
                printed += os.read(leader, 65536)
            assert process.poll() is None, printed.decode(errors="replace")
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)
        os.close(leader)
    return printed.decode(errors="replace").replace("\r\n", "\n")


@pytest.mark.slow
def test_at_a_terminal_kibitz_up_says_where_it_is_first_in_a_short_summary(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("KIBITZ_")},
        "KIBITZ_DATA_DIR": str(tmp_path / "data"),
        "TERM": "dumb",
    }
    printed = _run_at_a_terminal(["up", "--port", str(port)], env, tmp_path)
    lines = [line for line in printed.splitlines() if line.strip()]
    summary = next(i for i, line in enumerate(lines) if line.startswith("kibitz is up:"))
    assert lines[summary] == f"kibitz is up: http://127.0.0.1:{port}"
    assert lines[summary + 1].split() == ["API", "reference", f"http://127.0.0.1:{port}/docs"]
    # Readable log lines, not JSON, and few of them before the address.
    assert not any(line.lstrip().startswith("{") for line in lines)
    assert summary <= 6, printed


@pytest.mark.slow
def test_kibitz_up_logs_json_when_nobody_reads_it_at_a_terminal(tmp_path: Path) -> None:
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("KIBITZ_")},
        "KIBITZ_DATA_DIR": str(tmp_path / "data"),
    }
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "kibitz", "up", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)  # a loaded machine stops slowly
    lines = output.decode().splitlines()
    assert f"kibitz is up on http://127.0.0.1:{port}" in lines
    logged = [line for line in lines if line.startswith("{")]
    assert logged and all(json.loads(line)["timestamp"] for line in logged)
