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
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from kibitz.kit.http import ServiceClient
from kibitz.kit.jwt import Principal
from kibitz.kit.plans import FeatureNotInPlan, PlanReader
from kibitz.services.chat.errors import MentionNotResolved, OrchestratorSwitchedToNoTools
from kibitz.services.chat.participants import FEATURE, NO_TOOLS
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


@dataclass(frozen=True)
class AgentCard:
    """What planning needs of an agent: its name, and its provider (an orchestrator's must
    call tools)."""

    name: str
    provider: str


async def agent_card(
    agents: ServiceClient, agent_id: uuid.UUID, access_token: str
) -> AgentCard | None:
    """The agent as its user sees it (None when they no longer may use it)."""
    response = await agents.request(
        "GET", f"/agents/{agent_id}", headers={"Authorization": f"Bearer {access_token}"}
    )
    if response.status_code != 200:
        return None
    agent = response.json()
    return AgentCard(str(agent.get("name") or ""), str(agent.get("llm_provider") or ""))


# 30 s: how long a participant's name is reused (a rename shows in labels within this long; a
# mention the cached names cannot resolve reads them afresh first).
_NAME_SECONDS = 30.0
# Entries kept before a cache starts over (only hints: forgetting costs one planning each).
_CACHE_ENTRIES = 10_000


class TurnPlanner:
    """Plans turns, remembering (per process) each chat's participants as a send last read them
    and their names: a send to a chat of several agents then plans before its transaction and
    stores in one go (the transaction still checks the participants: a stale guess only costs
    the planning again). Measured by bench/multi_agent.py: planning inside the send (a pass
    given up, three agent look-ups, a second pass) put the first agent's first token 7.5 ms
    behind a one-agent send at concurrency 1."""

    def __init__(self) -> None:
        self._chats: dict[uuid.UUID, tuple[tuple[uuid.UUID, ...], str]] = {}
        self._cards: dict[uuid.UUID, tuple[float, AgentCard | None]] = {}

    def remember(self, chat_id: uuid.UUID, seen: TurnToPlan) -> None:
        """The chat's participants and mode, as a send's transaction read them."""
        if len(self._chats) > _CACHE_ENTRIES:
            self._chats.clear()
        self._chats[chat_id] = (seen.participants, seen.mode)

    async def ahead(
        self,
        chat_id: uuid.UUID,
        *,
        agents: ServiceClient,
        plans: PlanReader,
        principal: Principal,
        content: str,
        access_token: str,
    ) -> PlannedTurn | None:
        """The turn of a send to a chat whose participants this process knows (None: not
        known, or the default agent alone answers)."""
        known = self._chats.get(chat_id)
        if known is None or not needs_planning(known[0], known[1], content):
            return None
        try:
            return await self.plan(
                agents=agents,
                plans=plans,
                principal=principal,
                participants=known[0],
                mode=known[1],
                content=content,
                access_token=access_token,
            )
        except (MentionNotResolved, FeatureNotInPlan, OrchestratorSwitchedToNoTools):
            # Maybe only for participants since changed: the send's transaction reads them.
            self._chats.pop(chat_id, None)
            return None

    async def cards(
        self,
        agents: ServiceClient,
        participants: Sequence[uuid.UUID],
        access_token: str,
        *,
        fresh: bool = False,
        always: tuple[uuid.UUID, ...] = (),
    ) -> list[AgentCard | None]:
        """The participants as their user sees them (None for one they may no longer use);
        read afresh when `fresh`, and those in `always` every time."""
        now = time.monotonic()
        missing = [
            agent_id
            for agent_id in participants
            if fresh or agent_id in always or self._cards.get(agent_id, (0.0, None))[0] < now
        ]
        fetched = await asyncio.gather(
            *(agent_card(agents, agent_id, access_token) for agent_id in missing)
        )
        if len(self._cards) > _CACHE_ENTRIES:
            self._cards.clear()
        for agent_id, card in zip(missing, fetched, strict=True):
            self._cards[agent_id] = (now + _NAME_SECONDS, card)
        return [self._cards[agent_id][1] for agent_id in participants]

    async def plan(
        self,
        *,
        agents: ServiceClient,
        plans: PlanReader,
        principal: Principal,
        participants: Sequence[uuid.UUID],
        mode: str,
        content: str,
        access_token: str,
    ) -> PlannedTurn:
        """Who answers this message. Without the `multi_agent` feature (a downgraded tenant)
        the chat stays usable with its default agent alone: a panel is answered by it, and
        naming another participant is 403 `feature-not-in-plan` (an upgrade lifts both at
        once)."""
        allowed = (await plans.current(principal.tenant_id)).has(FEATURE)
        if not allowed:  # a refusal is read afresh: an upgrade lifts it at once
            allowed = (await plans.current(principal.tenant_id, fresh=True)).has(FEATURE)
        orchestrator = participants[0]
        # The orchestrator is read afresh: its provider may have changed since the chat was made.
        always = (orchestrator,) if allowed and mode == "orchestrated" else ()
        cards = await self.cards(agents, participants, access_token, always=always)
        card = cards[0]
        if always and card is not None and card.provider in NO_TOOLS:
            raise OrchestratorSwitchedToNoTools(
                card.name, card.provider, agent_id=str(orchestrator)
            )
        try:
            chat, answering = _answering(
                participants, cards, mode if allowed else "direct", content
            )
        except MentionNotResolved:  # maybe a rename this process has not seen yet
            cards = await self.cards(agents, participants, access_token, fresh=True)
            chat, answering = _answering(
                participants, cards, mode if allowed else "direct", content
            )
        if not allowed and answering != [participants[0]]:
            await plans.require(principal.tenant_id, FEATURE, bearer_token=access_token)
        return PlannedTurn(
            participants=tuple(participants),
            mode=mode,
            answering=tuple(
                (p.agent_id, p.name)
                for agent_id in answering
                for p in chat
                if p.agent_id == agent_id
            ),
        )


def _answering(
    participants: Sequence[uuid.UUID], cards: Sequence[AgentCard | None], mode: str, content: str
) -> tuple[list[Participant], list[uuid.UUID]]:
    """The chat as mentions see it, and who answers. An agent its user may no longer use keeps
    its place (its reply fails, saying so) but cannot be named."""
    chat = [
        Participant(agent_id, card.name if card else "")
        for agent_id, card in zip(participants, cards, strict=True)
    ]
    return chat, plan_turn(content, chat, mode)
