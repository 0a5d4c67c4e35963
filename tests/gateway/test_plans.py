"""Plan limits: read from the tenants service, cached, replaced at once by a plan change event."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import REGISTRY

from kibitz.contracts.events import PlanChanged
from kibitz.kit.events import EventEnvelope
from kibitz.kit.http import INTERNAL_TOKEN_HEADER
from tests.fixtures.serving import serving
from tests.gateway.conftest import Harness, start_gateway, start_harness


def _limits(per_minute: int) -> dict[str, Any]:
    return {
        "requests_per_minute": per_minute,
        "messages_per_day": 100,
        "agents": 3,
        "tokens_per_month": 100_000,
        "models": ["*"],
    }


def _tenants_app(plans: dict[uuid.UUID, int]) -> FastAPI:
    """Answers the internal plan lookup the way the tenants service does, and counts lookups."""
    app = FastAPI()
    app.state.lookups = 0

    @app.get("/tenants/internal/tenants/{tenant_id}/plan")
    async def plan(tenant_id: uuid.UUID, request: Request) -> JSONResponse:
        app.state.lookups += 1
        if request.headers.get(INTERNAL_TOKEN_HEADER) != "test-internal-token":
            return JSONResponse({"detail": "forbidden"}, status_code=403)
        if tenant_id not in plans:
            return JSONResponse({"detail": "no such tenant"}, status_code=404)
        return JSONResponse(
            {
                "tenant_id": str(tenant_id),
                "tenant_name": "Acme",
                "plan": "basic",
                "limits": _limits(plans[tenant_id]),
                "features": [],
            }
        )

    return app


@asynccontextmanager
async def _with_tenants(
    running: Harness, plans: dict[uuid.UUID, int]
) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI, Any]]:
    tenants = _tenants_app(plans)
    async with serving(tenants) as tenants_url:
        urls = {**running.platform.service_urls, "tenants": [tenants_url]}
        async with (
            start_gateway(service_urls=urls) as (url, _, platform),
            httpx.AsyncClient(base_url=url, trust_env=False, timeout=10) as http,
        ):
            yield http, tenants, platform


async def _publish_plan_change(platform: Any, tenant_id: uuid.UUID, per_minute: int) -> None:
    event = PlanChanged(
        tenant_id=tenant_id, plan="premium", limits=_limits(per_minute), features=[]
    )
    await platform.bus.publish(EventEnvelope.wrap(event))
    await platform.bus.drain()


async def test_the_tenants_plan_sets_the_limit_and_is_looked_up_once(tmp_path: Path) -> None:
    tenant = uuid.uuid4()
    async with (
        start_harness(services=("auth", "chat"), env={"KIBITZ_WEB_DIST": str(tmp_path)}) as running,
        _with_tenants(running, {tenant: 4}) as (http, tenants, _),
    ):
        headers = running.auth(tenant_id=tenant)
        statuses = [(await http.post("/chat/send", headers=headers)).status_code for _ in range(6)]
        assert statuses == [200] * 4 + [429] * 2
        assert tenants.state.lookups == 1


async def test_concurrent_first_requests_share_one_plan_lookup(tmp_path: Path) -> None:
    tenant = uuid.uuid4()
    async with (
        start_harness(services=("auth", "chat"), env={"KIBITZ_WEB_DIST": str(tmp_path)}) as running,
        _with_tenants(running, {tenant: 100}) as (http, tenants, _),
    ):
        headers = running.auth(tenant_id=tenant)
        await asyncio.gather(*(http.post("/chat/send", headers=headers) for _ in range(10)))
        assert tenants.state.lookups == 1


async def test_a_plan_change_event_changes_the_limit_on_the_next_request(tmp_path: Path) -> None:
    tenant = uuid.uuid4()
    async with (
        start_harness(services=("auth", "chat"), env={"KIBITZ_WEB_DIST": str(tmp_path)}) as running,
        _with_tenants(running, {tenant: 2}) as (http, tenants, platform),
    ):
        headers = running.auth(tenant_id=tenant)
        for _ in range(2):
            assert (await http.post("/chat/send", headers=headers)).status_code == 200
        assert (await http.post("/chat/send", headers=headers)).status_code == 429

        await _publish_plan_change(platform, tenant, 5)
        response = await http.post("/chat/send", headers=headers)
        assert response.status_code == 200
        assert response.headers["ratelimit-limit"] == "5"
        # The event carried the limits: no new lookup was needed.
        assert tenants.state.lookups == 1


async def test_without_a_tenants_service_the_basic_default_applies_until_an_event_says_otherwise(
    tmp_path: Path,
) -> None:
    env = {"KIBITZ_WEB_DIST": str(tmp_path)}
    async with start_harness(services=("auth", "chat"), env=env) as running:
        headers = running.auth()
        response = await running.http.post("/chat/send", headers=headers)
        assert response.headers["ratelimit-limit"] == "60"
        await _publish_plan_change(running.platform, running.tenant_id, 1200)
        response = await running.http.post("/chat/send", headers=headers)
        assert response.headers["ratelimit-limit"] == "1200"


async def test_an_unknown_tenant_or_a_failing_tenants_service_falls_back_to_the_default(
    tmp_path: Path,
) -> None:
    async with (
        start_harness(services=("auth", "chat"), env={"KIBITZ_WEB_DIST": str(tmp_path)}) as running,
        _with_tenants(running, {}) as (http, _, _platform),
    ):
        response = await http.post("/chat/send", headers=running.auth())
        assert response.status_code == 200
        assert response.headers["ratelimit-limit"] == "60"


def _rejections(plan: str) -> float:
    labels = {"scope": "tenant", "plan": plan}
    return REGISTRY.get_sample_value("kibitz_rate_limit_rejections_total", labels) or 0.0


async def test_rejections_are_counted_by_the_tenants_plan_never_its_id(tmp_path: Path) -> None:
    tenant = uuid.uuid4()
    async with (
        start_harness(services=("auth", "chat"), env={"KIBITZ_WEB_DIST": str(tmp_path)}) as running,
        _with_tenants(running, {tenant: 1}) as (http, _, platform),
    ):
        headers = running.auth(tenant_id=tenant)
        basic_before, premium_before = _rejections("basic"), _rejections("premium")
        assert (await http.post("/chat/send", headers=headers)).status_code == 200
        assert (await http.post("/chat/send", headers=headers)).status_code == 429
        assert _rejections("basic") == basic_before + 1

        # A plan change moves the tenant's next refusal to its new plan.
        await _publish_plan_change(platform, tenant, 1)
        assert (await http.post("/chat/send", headers=headers)).status_code == 429
        assert _rejections("premium") == premium_before + 1
        assert _rejections("basic") == basic_before + 1
