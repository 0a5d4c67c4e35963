"""Rate limits: exact per-tenant and per-IP counting, headers, shared counters through Redis."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY

from kibitz.gateway.rate_limits import RateLimits, storage_for
from tests.gateway.conftest import start_harness

REPO = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("KIBITZ_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _rejections(scope: str) -> float:
    # No tenants service here: a tenant's plan is unknown; a per-IP limit concerns no plan.
    labels = {"scope": scope, "plan": "unknown" if scope == "tenant" else "none"}
    return REGISTRY.get_sample_value("kibitz_rate_limit_rejections_total", labels) or 0.0


async def test_with_a_limit_of_n_exactly_n_of_2n_concurrent_requests_pass(tmp_path: Path) -> None:
    env = {"KIBITZ_GATEWAY_DEFAULT_REQUESTS_PER_MINUTE": "7", "KIBITZ_WEB_DIST": str(tmp_path)}
    async with start_harness(services=("auth", "chat"), env=env) as running:
        before = _rejections("tenant")
        headers = running.auth()
        responses = await asyncio.gather(
            *(running.http.post("/chat/send", headers=headers) for _ in range(14))
        )
        statuses = sorted(response.status_code for response in responses)
        assert statuses == [200] * 7 + [429] * 7
        assert _rejections("tenant") - before == 7
        refused = next(r for r in responses if r.status_code == 429)
        assert refused.headers["content-type"] == "application/problem+json"
        assert 0 < int(refused.headers["retry-after"]) <= 60
        assert refused.headers["ratelimit-limit"] == "7"
        assert refused.headers["ratelimit-remaining"] == "0"
        assert 0 < int(refused.headers["ratelimit-reset"]) <= 60
        passed = [r for r in responses if r.status_code == 200]
        assert all(r.headers["ratelimit-limit"] == "7" for r in passed)
        assert sorted(int(r.headers["ratelimit-remaining"]) for r in passed)[0] == 0


async def test_each_tenant_has_its_own_counter(tmp_path: Path) -> None:
    env = {"KIBITZ_GATEWAY_DEFAULT_REQUESTS_PER_MINUTE": "2", "KIBITZ_WEB_DIST": str(tmp_path)}
    async with start_harness(services=("auth", "chat"), env=env) as running:
        first, second = uuid.uuid4(), uuid.uuid4()
        for _ in range(2):
            assert (
                await running.http.post("/chat/send", headers=running.auth(tenant_id=first))
            ).status_code == 200
        assert (
            await running.http.post("/chat/send", headers=running.auth(tenant_id=first))
        ).status_code == 429
        assert (
            await running.http.post("/chat/send", headers=running.auth(tenant_id=second))
        ).status_code == 200


async def test_on_the_basic_default_70_page_reads_pass_and_the_61st_send_is_refused(
    tmp_path: Path,
) -> None:
    async with start_harness(
        services=("auth", "users", "chat"), env={"KIBITZ_WEB_DIST": str(tmp_path)}
    ) as running:
        headers = running.auth(user_id=uuid.uuid4())
        reads = [await running.http.get("/users/echo", headers=headers) for _ in range(70)]
        assert [r.status_code for r in reads] == [200] * 70
        assert reads[-1].headers["ratelimit-limit"] == "600"
        assert reads[-1].headers["ratelimit-remaining"] == "530"
        sends = [await running.http.post("/chat/send", headers=headers) for _ in range(61)]
        assert [r.status_code for r in sends] == [200] * 60 + [429]
        assert sends[0].headers["ratelimit-limit"] == "60"
        refused = sends[-1]
        assert 0 < int(refused.headers["retry-after"]) <= 60
        assert refused.headers["ratelimit-remaining"] == "0"
        assert "60 requests per minute" in refused.json()["detail"]
        assert refused.json()["limit_name"] == "plan"
        # Browsing goes on while the plan's sends are used up.
        assert (await running.http.get("/chat/echo", headers=headers)).status_code == 200


async def test_reads_count_per_user_against_the_read_limit_and_never_against_the_plan(
    tmp_path: Path,
) -> None:
    env = {
        "KIBITZ_GATEWAY_READ_REQUESTS_PER_MINUTE": "3",
        "KIBITZ_GATEWAY_DEFAULT_REQUESTS_PER_MINUTE": "2",
        "KIBITZ_WEB_DIST": str(tmp_path),
    }
    async with start_harness(services=("auth", "chat"), env=env) as running:
        before = _rejections("user")
        tenant = uuid.uuid4()
        alice = running.auth(tenant_id=tenant, user_id=uuid.uuid4())
        bob = running.auth(tenant_id=tenant, user_id=uuid.uuid4())
        statuses = [
            (await running.http.get("/chat/echo", headers=alice)).status_code for _ in range(4)
        ]
        assert statuses == [200] * 3 + [429]
        refused = await running.http.get("/chat/echo", headers=alice)
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert 0 < int(refused.headers["retry-after"]) <= 60
        assert refused.headers["ratelimit-limit"] == "3"
        assert refused.json()["limit_name"] == "reads"
        assert _rejections("user") - before == 2
        # Another user of the same tenant has a counter of their own.
        assert (await running.http.get("/chat/echo", headers=bob)).status_code == 200
        # The plan's counter was not touched by the reads: both sends pass, the third is refused.
        sends = [
            (await running.http.post("/chat/send", headers=alice)).status_code for _ in range(3)
        ]
        assert sends == [200, 200, 429]


async def test_credential_routes_are_limited_per_client_ip(tmp_path: Path) -> None:
    env = {"KIBITZ_GATEWAY_AUTH_IP_REQUESTS_PER_MINUTE": "3", "KIBITZ_WEB_DIST": str(tmp_path)}
    async with start_harness(services=("auth",), env=env) as running:
        before = _rejections("ip")
        responses = await asyncio.gather(
            *(
                running.http.post("/auth/login", json={"email": "a@b.c", "password": "x"})
                for _ in range(6)
            )
        )
        # The echo upstream has no /auth/login: 404 means "let through".
        assert sorted(r.status_code for r in responses) == [404] * 3 + [429] * 3
        assert {r.json()["limit_name"] for r in responses if r.status_code == 429} == {"address"}
        assert _rejections("ip") - before == 3
        # The JWKS and authenticated auth routes are not counted against the address.
        assert (await running.http.get("/auth/jwks")).status_code == 200
        assert (await running.http.get("/auth/echo", headers=running.auth())).status_code == 200


@pytest.mark.redis
async def test_redis_counters_are_exact_under_concurrency() -> None:
    prefix = f"kibitz-test-{uuid.uuid4().hex[:8]}"
    limits = RateLimits(storage_for(REDIS_URL, key_prefix=prefix))
    try:
        results = await asyncio.gather(
            *(limits.hit("tenant", "t", per_minute=10) for _ in range(20))
        )
        assert sum(1 for result in results if result is not None and result.allowed) == 10
    finally:
        await limits.reset()


async def _hits_before_a_plan_change_still_count_after_it(limits: RateLimits) -> None:
    for _ in range(3):
        assert (await limits.hit("tenant", "t", per_minute=5)).allowed  # type: ignore[union-attr]
    # Downgraded to 3/min: the 3 hits of this minute already fill the new window.
    refused = await limits.hit("tenant", "t", per_minute=3)
    assert refused is not None and not refused.allowed and refused.remaining == 0
    # Upgraded to 10/min: the same 3 still count, so 6 remain after this one.
    upgraded = await limits.hit("tenant", "t", per_minute=10)
    assert upgraded is not None and upgraded.allowed and upgraded.remaining == 6
    assert upgraded.limit == 10


async def test_a_plan_change_keeps_the_hits_of_the_current_window_in_memory() -> None:
    await _hits_before_a_plan_change_still_count_after_it(
        RateLimits(storage_for(None, key_prefix="unused"))
    )


@pytest.mark.redis
async def test_a_plan_change_keeps_the_hits_of_the_current_window_in_redis() -> None:
    limits = RateLimits(storage_for(REDIS_URL, key_prefix=f"kibitz-test-{uuid.uuid4().hex[:8]}"))
    try:
        await _hits_before_a_plan_change_still_count_after_it(limits)
    finally:
        await limits.reset()


async def test_the_memory_window_forgets_hits_older_than_a_minute(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    limits = RateLimits(storage_for(None, key_prefix="unused"))
    now = [1_000_000.0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    for _ in range(2):
        assert (await limits.hit("ip", "a", per_minute=2)).allowed  # type: ignore[union-attr]
    assert not (await limits.hit("ip", "a", per_minute=2)).allowed  # type: ignore[union-attr]
    now[0] += 61
    again = await limits.hit("ip", "a", per_minute=2)
    assert again is not None and again.allowed and again.remaining == 1


async def test_an_unreachable_redis_lets_requests_through(tmp_path: Path) -> None:
    env = {"KIBITZ_WEB_DIST": str(tmp_path)}
    async with start_harness(
        services=("auth", "chat"), env=env, redis_url=f"redis://127.0.0.1:{_free_port()}/0"
    ) as running:
        response = await running.http.post("/chat/send", headers=running.auth())
        assert response.status_code == 200
        assert "ratelimit-limit" not in response.headers
        ready = await running.http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"rate_limit_storage": "unavailable"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _gateway_processes(count: int, env: dict[str, str]) -> Iterator[list[str]]:
    processes: list[subprocess.Popen[bytes]] = []
    urls = []
    try:
        for _ in range(count):
            port = _free_port()
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "kibitz",
                        "serve",
                        "gateway",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                    ],
                    cwd=REPO,
                    env={**os.environ, **env},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=15)


async def _wait_healthy(http: httpx.AsyncClient, url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if (await http.get(f"{url}/healthz")).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"gateway at {url} did not start")


@pytest.mark.redis
@pytest.mark.slow
async def test_two_gateway_processes_share_the_plan_and_read_limits_through_redis(
    tmp_path: Path,
) -> None:
    prefix = f"kibitz-test-{uuid.uuid4().hex[:8]}"
    async with start_harness(
        services=("auth", "chat"), env={"KIBITZ_WEB_DIST": str(tmp_path)}
    ) as running:
        env = {
            "KIBITZ_INTERNAL_TOKEN": "test-internal-token",
            "KIBITZ_REDIS_URL": REDIS_URL,
            "KIBITZ_AUTH_URL": running.platform.service_urls["auth"][0],
            "KIBITZ_CHAT_URL": running.platform.service_urls["chat"][0],
            "KIBITZ_GATEWAY_DEFAULT_REQUESTS_PER_MINUTE": "6",
            "KIBITZ_GATEWAY_READ_REQUESTS_PER_MINUTE": "4",
            "KIBITZ_GATEWAY_RATE_LIMIT_KEY_PREFIX": prefix,
            "KIBITZ_WEB_DIST": str(tmp_path),
        }
        with _gateway_processes(2, env) as gateways:
            async with httpx.AsyncClient(timeout=15, trust_env=False) as http:
                for url in gateways:
                    await _wait_healthy(http, url)
                ready = await http.get(f"{gateways[0]}/readyz")
                assert ready.json()["checks"] == {"rate_limit_storage": "ok"}
                headers = running.auth()
                try:
                    responses = await asyncio.gather(
                        *(
                            http.post(f"{gateways[i % 2]}/chat/send", headers=headers)
                            for i in range(12)
                        )
                    )
                    statuses = sorted(response.status_code for response in responses)
                    assert statuses == [200] * 6 + [429] * 6
                    per_gateway = {
                        gateway: sum(
                            1
                            for i, r in enumerate(responses)
                            if gateways[i % 2] == gateway and r.status_code == 200
                        )
                        for gateway in gateways
                    }
                    assert sum(per_gateway.values()) == 6
                    # Reads have their own per-user counter, shared the same way.
                    reads = await asyncio.gather(
                        *(
                            http.get(f"{gateways[i % 2]}/chat/echo", headers=headers)
                            for i in range(8)
                        )
                    )
                    assert sorted(r.status_code for r in reads) == [200] * 4 + [429] * 4
                    assert {r.json()["limit_name"] for r in reads if r.status_code == 429} == {
                        "reads"
                    }
                finally:
                    await RateLimits(storage_for(REDIS_URL, key_prefix=prefix)).reset()


async def test_behind_a_trusted_balancer_the_ip_limit_counts_the_real_client(
    tmp_path: Path,
) -> None:
    env = {
        "KIBITZ_GATEWAY_AUTH_IP_REQUESTS_PER_MINUTE": "1",
        "KIBITZ_GATEWAY_TRUST_FORWARDED_FOR": "true",
        "KIBITZ_WEB_DIST": str(tmp_path),
    }
    async with start_harness(services=("auth",), env=env) as running:

        async def login_from(address: str) -> int:
            response = await running.http.post(
                "/auth/login", json={}, headers={"X-Forwarded-For": f"10.0.0.1, {address}"}
            )
            return response.status_code

        assert await login_from("198.51.100.1") == 404
        assert await login_from("198.51.100.2") == 404
        assert await login_from("198.51.100.1") == 429
