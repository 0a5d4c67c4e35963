"""Chat's module: what it wires besides its routes (the reply queue's depth on /metrics)."""

from __future__ import annotations

import re

from tests.services.chat.world import World


def jobs_depth(scraped: str) -> float:
    """`kibitz_jobs_depth` of chat's reply jobs in a /metrics scrape."""
    found = re.search(r'^kibitz_jobs_depth\{kind="chat\.reply"\} (\S+)$', scraped, re.MULTILINE)
    assert found is not None, "chat's /metrics has no reply-queue depth"
    return float(found.group(1))


async def test_the_reply_queues_depth_is_a_gauge_on_chats_metrics(world: World) -> None:
    metrics = f"{world.stack.url('chat')}/metrics"
    assert jobs_depth((await world.http.get(metrics)).text) == 0
    alice = await world.member()
    # Long enough (200 tokens, 20 ms apart) to be leased when scraped; stopped below.
    sent = (await world.send(alice, "talk [sim:tokens=200] [sim:gap-ms=20]")).json()
    reply_id = sent["agent_message"]["id"]
    assert jobs_depth((await world.http.get(metrics)).text) == 1
    stopped = await world.http.post(
        world.url(f"/chat/messages/{reply_id}/stop"), headers=alice.headers
    )
    assert stopped.status_code == 200, stopped.text
    await world.wait_finished(alice, sent["chat_id"], reply_id)
    assert jobs_depth((await world.http.get(metrics)).text) == 0
