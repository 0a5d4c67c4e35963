"""Limits by cost through a real stack: browsing never uses up the plan; sends do."""

from __future__ import annotations

from pathlib import Path

from tests.services.chat.world import chat_world

# What the web app asks for while a user browses (dashboard, chat list, agents, settings).
PAGE_READS = ("/auth/me", "/tenants/plan", "/chat/chats", "/agents/my", "/tenants/plans")


async def test_on_basic_70_page_reads_pass_and_the_61st_send_in_a_minute_is_refused(
    tmp_path: Path,
) -> None:
    async with chat_world(tmp_path, gateway=True, modules=None) as world:
        alice = await world.member()
        reads = [
            await world.http.get(world.url(PAGE_READS[i % len(PAGE_READS)]), headers=alice.headers)
            for i in range(70)
        ]
        assert [r.status_code for r in reads] == [200] * 70, [r.text for r in reads[:5]]
        assert {r.headers["ratelimit-limit"] for r in reads} == {"600"}

        sends = [await world.send(alice, "hi [sim:tokens=1]") for _ in range(61)]
        assert [r.status_code for r in sends[:60]] == [201] * 60, sends[0].text
        assert sends[0].headers["ratelimit-limit"] == "60"
        refused = sends[60]
        assert refused.status_code == 429
        assert 0 < int(refused.headers["retry-after"]) <= 60
        assert refused.headers["ratelimit-remaining"] == "0"
        # The plan's minute is used up, yet the user can still browse.
        assert (
            await world.http.get(world.url("/chat/chats"), headers=alice.headers)
        ).status_code == 200
