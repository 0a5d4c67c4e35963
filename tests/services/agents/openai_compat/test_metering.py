"""Quota of OpenAI-compatible completions while the tenant has plenty left: a completion starts
before its reservation answers, yet every one is counted, and one refused meanwhile (the quota
spent elsewhere) is cut off with OpenAI's `insufficient_quota` error."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import openai
import pytest

from kibitz.kit.http.client import INTERNAL_TOKEN_HEADER
from tests.fixtures.simulator import RunningSimulator
from tests.fixtures.stack import Account, Stack, start_stack
from tests.services.agents.conftest import agents_env
from tests.services.agents.openai_compat.test_api import MODULES, new_agent, new_key, sdk, sim

__all__ = ["sim"]  # the module's simulator fixture

MESSAGES_PER_DAY = 10


def small_message_plans(tmp_path: Path) -> Path:
    shipped = Path(__file__).parents[4] / "src/kibitz/services/tenants/plans.json"
    catalogue = json.loads(shipped.read_text())
    for plan in catalogue["plans"]:
        if plan["id"] == "basic":
            plan["limits"]["messages_per_day"] = MESSAGES_PER_DAY
    path = tmp_path / "plans.json"
    path.write_text(json.dumps(catalogue))
    return path


async def messages_used(stack: Stack, account: Account) -> int:
    usage = await stack.http.get(f"{stack.entry}/tenants/usage", headers=account.headers)
    assert usage.status_code == 200, usage.text
    return int(usage.json()["messages"]["used"])


async def spend_messages_elsewhere(stack: Stack, account: Account, count: int) -> None:
    """What chat (or another agents replica) does: reserve messages with the tenants service."""
    token = stack.running.platform.internal_token
    for _ in range(count):
        reserved = await stack.http.post(
            f"{stack.url('tenants')}/tenants/internal/usage/reserve",
            json={
                "tenant_id": account.tenant_id,
                "metric": "messages",
                "amount": 1,
                "key": f"elsewhere-{uuid.uuid4().hex}",
            },
            headers={INTERNAL_TOKEN_HEADER: token},
        )
        assert reserved.status_code == 200, reserved.text


async def test_completions_started_early_are_counted_and_cut_off_once_refused(
    tmp_path: Path, sim: RunningSimulator
) -> None:
    env = {**agents_env(sim), "KIBITZ_TENANTS_PLANS_FILE": str(small_message_plans(tmp_path))}
    async with start_stack(MODULES, data_dir=tmp_path, env=env) as stack:
        alice = await stack.register()
        tutor = await new_agent(stack, alice)
        async with sdk(stack, (await new_key(stack, alice))["key"]) as client:
            # The first waits for its reservation (nothing known yet); it leaves 9 of 10: plenty.
            for _ in range(3):
                answer = await client.chat.completions.create(
                    model=tutor["id"], messages=[{"role": "user", "content": "hi"}]
                )
                assert answer.choices[0].message.content
            assert await messages_used(stack, alice) == 3
            await spend_messages_elsewhere(stack, alice, MESSAGES_PER_DAY - 3)
            # Started on the hint, refused by its reservation: no normal end, whichever way
            # the refusal arrives (before the stream opened, or as its error chunk).
            with pytest.raises(openai.APIError) as raised:
                stream = await client.chat.completions.create(
                    model=tutor["id"],
                    messages=[{"role": "user", "content": "one more [sim:tokens=200]"}],
                    stream=True,
                )
                async for _ in stream:
                    pass
            error = raised.value.body
            assert isinstance(error, dict), error
            assert error.get("code") == "insufficient_quota", error
            # Refused, so not counted; and the next is refused before any answer.
            assert await messages_used(stack, alice) == MESSAGES_PER_DAY
            with pytest.raises(openai.RateLimitError):
                await client.chat.completions.create(
                    model=tutor["id"], messages=[{"role": "user", "content": "hi"}]
                )
