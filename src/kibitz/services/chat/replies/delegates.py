"""Whom an orchestrator may consult: its delegates, each as the tool that asks it (`ask_<handle>`,
described by the agent's name and instructions), read from the agents service, and the
descriptions as this process last read them."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import structlog

from kibitz.kit.http import ServiceClient, acting_for
from kibitz.services.chat.replies.orders import ReplyOrder

logger = structlog.get_logger("kibitz.chat")

# What the agents service accepts of a tool: a name of 1-64 of these, a 2000-character description.
_NOT_IN_TOOL_NAME = re.compile(r"[^a-zA-Z0-9_-]")
_DESCRIPTION_CHARS = 2000
_TASK_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "task": {
            "type": "string",
            "description": "What to ask, in full: the agent sees only this, not the chat.",
        }
    },
    "required": ["task"],
}


@dataclass(frozen=True)
class Delegate:
    """A participant the orchestrator may consult, and the tool that asks it."""

    agent_id: uuid.UUID
    tool: str
    name: str
    instructions: str

    def definition(self) -> dict[str, Any]:
        """The tool as the agents service takes it."""
        description = f"Ask {self.name}, another agent in this chat, and get its answer."
        if self.instructions.strip():
            description += f" Its instructions: {self.instructions.strip()}"
        if len(description) > _DESCRIPTION_CHARS:
            description = description[: _DESCRIPTION_CHARS - 1] + "…"
        return {"name": self.tool, "description": description, "parameters": _TASK_PARAMETERS}


def tool_name(agent_name: str, taken: set[str]) -> str:
    """`ask_<handle>`: the name without spaces, lower case, in the characters a tool's name may
    hold; made unique with a number when two participants would share it."""
    handle = _NOT_IN_TOOL_NAME.sub("", "".join(agent_name.split()).casefold())[:48] or "agent"
    name, number = f"ask_{handle}", 2
    while name in taken:
        name, number = f"ask_{handle}_{number}", number + 1
    taken.add(name)
    return name


def named(found: list[tuple[uuid.UUID, str, str]]) -> list[Delegate]:
    """The delegates ((agent id, name, instructions) in the chat's order) with their tools."""
    taken: set[str] = set()
    return [
        Delegate(agent_id=agent_id, tool=tool_name(name, taken), name=name, instructions=text)
        for agent_id, name, text in found
    ]


async def load_delegates(agents: ServiceClient, order: ReplyOrder) -> list[Delegate]:
    """The order's delegates as the user may see them now (one gone meanwhile is left out)."""
    headers = acting_for(tenant_id=order.tenant_id, user_id=order.user_id)

    async def one(agent_id: uuid.UUID) -> dict[str, Any] | None:
        try:
            response = await agents.request(
                "GET", f"/agents/internal/agents/{agent_id}", headers=headers
            )
        except Exception:
            logger.warning("chat_delegate_lookup_failed", agent_id=str(agent_id))
            return None
        return dict(response.json()) if response.status_code == 200 else None

    found = await asyncio.gather(*(one(agent_id) for agent_id in order.delegates))
    return named(
        [
            (agent_id, str(agent.get("name") or "agent"), str(agent.get("instructions") or ""))
            for agent_id, agent in zip(order.delegates, found, strict=True)
            if agent is not None
        ]
    )


# 30 s: how long a delegate's name and instructions are offered as last read (an edit shows in
# the orchestrator's tools within this long; whom it may ask is read afresh for every reply).
_DESCRIPTION_SECONDS = 30.0
# Entries kept before the descriptions start over (only hints: forgetting costs a look-up).
_DESCRIPTION_ENTRIES = 10_000


class DelegateDescriptions:
    """The delegates' names and instructions as this process last read them, per user: an
    orchestrator's request offers its tools from them at once, while the look-ups that say whom
    it may ask run beside its model call (needed only once it calls a tool). Measured by
    bench/multi_agent.py at concurrency 1: the two look-ups in front of the orchestrator's
    request cost 6.3 ms of the first delegate's first token; with them (and the budget read)
    beside its model call, and each delegate asked before its reservation and store, the
    first delegate's first token came 16-19 -> 8-13 ms behind a single send's (beyond the
    tool round; before/after alternated in one run), and a hand-over 2-3.5 -> about 1 ms
    beyond the model's own time to first token."""

    def __init__(self) -> None:
        self._seen: dict[tuple[uuid.UUID, uuid.UUID], tuple[float, str, str]] = {}

    def remembered(self, order: ReplyOrder) -> list[Delegate] | None:
        """The order's delegates as last read, if every one was read lately (None: look up)."""
        now, found = time.monotonic(), []
        for agent_id in order.delegates:
            seen = self._seen.get((order.user_id, agent_id))
            if seen is None or seen[0] < now:
                return None
            found.append((agent_id, seen[1], seen[2]))
        return named(found)

    def learn(self, order: ReplyOrder, delegates: list[Delegate]) -> None:
        """The delegates as just read (one left out is forgotten: looked up before its next
        offer)."""
        if len(self._seen) > _DESCRIPTION_ENTRIES:
            self._seen.clear()
        until = time.monotonic() + _DESCRIPTION_SECONDS
        for agent_id in order.delegates:
            self._seen.pop((order.user_id, agent_id), None)
        for delegate in delegates:
            key = (order.user_id, delegate.agent_id)
            self._seen[key] = (until, delegate.name, delegate.instructions)
