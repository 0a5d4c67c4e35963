"""A send's turn: the agents that answer it, planned outside the send's transaction.

A send to a chat with one agent (or a `direct` message that names nobody) is answered by the
default agent alone and needs no planning: no request beyond the send's own. Any other needs the
participants' names (mentions, and the labels later agents read) and the tenant's plan, both
over HTTP; those are asked before the send's write transaction (never inside it: SQLite's
transaction holds the database's one write lock). A send to an existing chat learns the chat's
participants inside that transaction, so it gives up at once (`TurnToPlan`, nothing written),
plans, and stores again with the turn, which must match the participants it then reads."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from kibitz.kit.http import ServiceClient
from kibitz.kit.jwt import Principal
from kibitz.kit.plans import PlanReader
from kibitz.services.chat.participants import FEATURE
from kibitz.services.chat.turns.plan import Participant, mentioned, plan_turn


@dataclass(frozen=True)
class PlannedTurn:
    """Who answers, in order, and the participants and mode it was planned for."""

    participants: tuple[uuid.UUID, ...]
    mode: str
    # (agent id, name) of each agent that answers, in order.
    answering: tuple[tuple[uuid.UUID, str], ...]


class TurnToPlan(Exception):
    """The chat's participants are known only now: plan the turn, then store again."""

    def __init__(self, participants: Sequence[uuid.UUID], mode: str) -> None:
        super().__init__("the turn needs planning")
        self.participants = tuple(participants)
        self.mode = mode


def needs_planning(participants: Sequence[uuid.UUID], mode: str, content: str) -> bool:
    """Whether anyone but the default agent may answer this message."""
    if len(participants) < 2:
        return False
    return mode != "direct" or bool(mentioned(content))


def checked_turn(
    participants: Sequence[uuid.UUID], mode: str, content: str, turn: PlannedTurn | None
) -> PlannedTurn | None:
    """The turn to store for the chat as the transaction reads it (None: the default agent
    alone); raises TurnToPlan when it needs planning, or was planned for other participants."""
    if not needs_planning(participants, mode, content):
        return None
    if turn is None or turn.participants != tuple(participants) or turn.mode != mode:
        raise TurnToPlan(participants, mode)
    return turn


async def agent_name(agents: ServiceClient, agent_id: uuid.UUID, access_token: str) -> str | None:
    """The agent's name, as its user sees it (None when they no longer may use it)."""
    response = await agents.request(
        "GET", f"/agents/{agent_id}", headers={"Authorization": f"Bearer {access_token}"}
    )
    if response.status_code != 200:
        return None
    return str(response.json().get("name") or "")


async def plan(
    *,
    agents: ServiceClient,
    plans: PlanReader,
    principal: Principal,
    participants: Sequence[uuid.UUID],
    mode: str,
    content: str,
    access_token: str,
) -> PlannedTurn:
    """Who answers this message. Without the `multi_agent` feature (a downgraded tenant) the
    chat stays usable with its default agent alone: a panel is answered by it, and naming another
    participant is 403 `feature-not-in-plan` (an upgrade lifts both at once)."""
    names = await asyncio.gather(
        *(agent_name(agents, agent_id, access_token) for agent_id in participants)
    )
    # An agent its user may no longer use keeps its place (its reply fails, saying so) but
    # cannot be named.
    chat = [
        Participant(agent_id, name or "")
        for agent_id, name in zip(participants, names, strict=True)
    ]
    allowed = (await plans.current(principal.tenant_id)).has(FEATURE)
    if not allowed:  # a refusal is read afresh: an upgrade lifts it at once
        allowed = (await plans.current(principal.tenant_id, fresh=True)).has(FEATURE)
    answering = plan_turn(content, chat, mode if allowed else "direct")
    if not allowed and answering != [participants[0]]:
        await plans.require(principal.tenant_id, FEATURE, bearer_token=access_token)
    return PlannedTurn(
        participants=tuple(participants),
        mode=mode,
        answering=tuple((p.agent_id, p.name) for a in answering for p in chat if p.agent_id == a),
    )
