"""What a stream subscriber sees: SSE/WebSocket frames with resumable ids, never a duplicate.

Event ids name a position in a message: `<message id>:<characters delivered>`, or
`<message id>:end` once the message is whole. A client that reconnects with the last id it saw
resumes exactly there, whichever replica it lands on.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import structlog

from kibitz.kit.http.sse import encode_event
from kibitz.services.chat.streams.fanout import StreamEvent

logger = structlog.get_logger("kibitz.chat.streams")

END = "end"
CREATED = "message.created"
DELTA = "message.delta"
COMPLETED = "message.completed"
FAILED = "message.failed"
# Fan-out only (never sent to a client): the chat is gone, so its streams end.
DELETED = "chat.deleted"
# The chat itself changed (a proposed title): `{"chat": ChatRead}`, sent without an event id
# (it names no position in a message, so a client's Last-Event-ID stays where it was).
CHAT_UPDATED = "chat.updated"


@dataclass(frozen=True)
class Frame:
    """One event as a client receives it."""

    event: str
    id: str | None
    data: dict[str, Any]

    def sse(self) -> bytes:
        """The frame in `text/event-stream` form."""
        payload = json.dumps(self.data, separators=(",", ":"))
        return encode_event(payload, event=self.event, event_id=self.id)

    def json(self) -> str:
        """The frame as one WebSocket text message."""
        return json.dumps({"event": self.event, "id": self.id, "data": self.data})


# The frames a subscriber can be sent at one moment (one write); None stands for a heartbeat.
Batch = list[Frame]


@dataclass(frozen=True)
class ResumePoint:
    """Where a client's last event left it: a message and a position in it (None: whole)."""

    message_id: uuid.UUID
    position: int | None

    @classmethod
    def parse(cls, raw: str | None) -> ResumePoint | None:
        """Read a Last-Event-ID (None when absent or not one of ours)."""
        if not raw:
            return None
        message_part, _, position_part = raw.strip().partition(":")
        try:
            message_id = uuid.UUID(message_part)
        except ValueError:
            return None
        if position_part == END:
            return cls(message_id, None)
        if position_part.isdigit() and len(position_part) <= 9:
            return cls(message_id, int(position_part))
        return None


def terminal_event_name(status: str) -> str:
    """`message.failed` for a failed reply, `message.completed` for a complete or stopped one."""
    return FAILED if status == "failed" else COMPLETED


class StreamCursor:
    """Tracks what one subscriber has been sent, per message, and turns events into frames."""

    def __init__(self, *, only: set[str] | None = None) -> None:
        # message id -> characters sent, or None once the message is whole.
        self.positions: dict[str, int | None] = {}
        # message id -> the agent writing it: deltas name it too (the fan-out's delta events
        # leave it out; the message's created event or replay has it).
        self.agents: dict[str, str | None] = {}
        self.only = only

    def wants(self, message_id: str) -> bool:
        """Whether this subscriber follows the message."""
        return self.only is None or message_id in self.only

    def is_finished(self, message_id: str) -> bool:
        """Whether the subscriber has been sent the whole message."""
        return message_id in self.positions and self.positions[message_id] is None

    def resume_at(self, message_id: str, position: int | None) -> None:
        """The subscriber already has the message up to `position`."""
        self.positions[message_id] = position

    def created(self, message: dict[str, Any]) -> list[Frame]:
        """Frames for a new message (nothing if already sent)."""
        message_id = str(message["id"])
        if not self.wants(message_id) or message_id in self.positions:
            return []
        if message["sender"] == "user":
            self.positions[message_id] = None
            return [Frame(CREATED, f"{message_id}:{END}", message)]
        self.positions[message_id] = 0
        self.agents[message_id] = message.get("agent_id")
        return [Frame(CREATED, f"{message_id}:0", {**message, "content": ""})]

    def delta(self, message_id: str, offset: int, text: str) -> list[Frame]:
        """Frames for content from `offset` on (only what the subscriber lacks)."""
        if not self.wants(message_id) or not text:
            return []
        sent = self.positions.get(message_id, 0)
        if sent is None:
            return []
        end = offset + len(text)
        if end <= sent:
            return []
        if offset > sent:
            # Not expected (snapshots are read after subscribing); send rather than stall.
            logger.warning("chat_stream_gap", message_id=message_id, sent=sent, offset=offset)
            sent = offset
        piece = text[sent - offset :]
        self.positions[message_id] = end
        data = {
            "message_id": message_id,
            "agent_id": self.agents.get(message_id),
            "offset": sent,
            "content": piece,
        }
        return [Frame(DELTA, f"{message_id}:{end}", data)]

    def finished(self, message: dict[str, Any]) -> list[Frame]:
        """Frames for a message that is whole: any content not yet sent, then its end."""
        message_id = str(message["id"])
        if not self.wants(message_id) or self.is_finished(message_id):
            return []
        frames = []
        if message_id not in self.positions:
            frames += self.created(message)
            if message["sender"] == "user":
                return frames
        frames += self.delta(message_id, 0, message["content"])
        self.positions[message_id] = None
        frames.append(Frame(terminal_event_name(message["status"]), f"{message_id}:{END}", message))
        return frames

    def adopt_delegated(self, message: dict[str, Any]) -> None:
        """Follow a delegated answer to a reply this subscriber follows: it is part of that
        reply (a send's stream shows the orchestrator's consultations live)."""
        parent = message.get("parent_id")
        if self.only is not None and message.get("delegated") and str(parent) in self.only:
            self.only.add(str(message["id"]))

    def accept(self, event: StreamEvent) -> list[Frame]:
        """Frames for one live event from the fan-out."""
        kind = event.get("type")
        if kind in (CREATED, COMPLETED, FAILED):
            self.adopt_delegated(event["message"])
        if kind == CREATED:
            return self.created(event["message"])
        if kind == DELTA:
            return self.delta(str(event["message_id"]), int(event["offset"]), str(event["content"]))
        if kind in (COMPLETED, FAILED):
            return self.finished(event["message"])
        if kind == CHAT_UPDATED:
            return [Frame(CHAT_UPDATED, None, event["chat"])]
        return []

    def replay(self, message: dict[str, Any], content_now: str) -> list[Frame]:
        """Frames that bring the subscriber up to date with a stored message."""
        self.agents[str(message["id"])] = message.get("agent_id")
        if message["status"] in ("complete", "failed", "stopped") or message["sender"] == "user":
            return self.finished(message)
        frames = self.created(message)
        frames += self.delta(str(message["id"]), 0, content_now)
        return frames
