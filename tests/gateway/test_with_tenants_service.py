"""The gateway with the real tenants service: the plan sets the limit; a change applies at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.fixtures.stack import Stack, start_stack


async def _plan_limit(stack: Stack, headers: dict[str, str]) -> str:
    """The limit the gateway counts a send against (an empty send: refused by chat, not billed)."""
    response = await stack.http.post(f"{stack.entry}/chat/send", json={}, headers=headers)
    assert response.status_code == 422, response.text
    return response.headers["ratelimit-limit"]


async def test_subscribing_to_a_plan_changes_the_limit_on_the_next_request(tmp_path: Path) -> None:
    async with start_stack(["auth", "tenants", "chat", "gateway"], data_dir=tmp_path) as stack:
        account = await stack.register()
        assert await _plan_limit(stack, account.headers) == "60"
        # Reads count against the per-user read limit, whatever the plan.
        me = await stack.http.get(f"{stack.entry}/auth/me", headers=account.headers)
        assert me.headers["ratelimit-limit"] == "600"

        changed = await stack.http.post(
            f"{stack.entry}/tenants/subscribe", json={"plan": "gold"}, headers=account.headers
        )
        assert changed.status_code == 200, changed.text
        assert await _plan_limit(stack, account.headers) == "1200"


async def test_a_plan_change_made_elsewhere_reaches_the_gateway_through_the_event(
    tmp_path: Path,
) -> None:
    async with start_stack(["auth", "tenants", "chat", "gateway"], data_dir=tmp_path) as stack:
        account = await stack.register()
        assert await _plan_limit(stack, account.headers) == "60"
        # Straight to the tenants service: the gateway does not see this request.
        changed = await stack.http.post(
            f"{stack.url('tenants')}/tenants/subscribe",
            json={"plan": "premium"},
            headers=account.headers,
        )
        assert changed.status_code == 200, changed.text
        limit = ""
        for _ in range(50):
            limit = await _plan_limit(stack, account.headers)
            if limit == "300":
                break
            await asyncio.sleep(0.1)
        assert limit == "300"
