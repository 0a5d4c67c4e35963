"""`kibitz up` as a user runs it: starts, serves, registers a user over HTTP, stops on Ctrl+C."""

from __future__ import annotations

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
