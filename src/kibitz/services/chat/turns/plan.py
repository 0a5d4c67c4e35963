"""The turn plan: which of a chat's agents answer a message, in order. Pure: no I/O.

`direct`: the default agent, or the `@Name`d participants in the order they are first named;
`panel`: every participant in turn; `orchestrated`: the first agent (it consults the others).
A mention is `@` at the start of a word followed by the agent's name without its spaces,
case-insensitive ("@codereviewer" names "Code Reviewer"); when two participants share that
handle, naming it is ambiguous."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from kibitz.services.chat.errors import MentionNotResolved

# `@` at the start of a word (not in an email address), then the handle.
_MENTION = re.compile(r"(?<![\w@])@([\w-]+)")


@dataclass(frozen=True)
class Participant:
    """One agent of the chat, as mentions see it."""

    agent_id: uuid.UUID
    name: str

    @property
    def handle(self) -> str:
        """How a message names it: the name without whitespace, case-folded."""
        return "".join(self.name.split()).casefold()


def mentioned(content: str) -> list[str]:
    """The handles a message names, case-folded, each once, in the order first named."""
    handles: list[str] = []
    for match in _MENTION.finditer(content):
        handle = match.group(1).casefold()
        if handle not in handles:
            handles.append(handle)
    return handles


def resolve_mentions(content: str, participants: Sequence[Participant]) -> list[Participant]:
    """The participants a message names, in order (422 for an unknown or ambiguous name)."""
    choices = ["".join(p.name.split()) for p in participants if p.name.strip()]
    named: list[Participant] = []
    for handle in mentioned(content):
        matches = [p for p in participants if p.handle == handle]
        if not matches:
            raise MentionNotResolved(handle, reason="unknown", choices=choices)
        if len(matches) > 1:
            raise MentionNotResolved(handle, reason="ambiguous", choices=choices)
        named.append(matches[0])
    return named


def plan_turn(content: str, participants: Sequence[Participant], mode: str) -> list[uuid.UUID]:
    """The agents that answer this message, in the order they answer."""
    if not participants:
        raise ValueError("a chat has at least one participant")
    if mode == "panel":
        return [p.agent_id for p in participants]
    if mode == "orchestrated":
        return [participants[0].agent_id]
    named = resolve_mentions(content, participants)
    return [p.agent_id for p in named] or [participants[0].agent_id]
