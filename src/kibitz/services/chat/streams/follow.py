"""Following a chat: replay what the subscriber lacks, then live events, batched."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from kibitz.services.chat.models import Message
from kibitz.services.chat.repository import ChatRepository
from kibitz.services.chat.schemas import MessageRead
from kibitz.services.chat.storage import ChatDatabase
from kibitz.services.chat.streams.cursor import DELETED, Batch, ResumePoint, StreamCursor
from kibitz.services.chat.streams.fanout import Fanout, Subscription

# A reconnecting client is replayed at most this many messages before the live stream.
_REPLAY_LIMIT = 1000


def message_dict(message: Message) -> dict[str, Any]:
    """A message as the API shows it (JSON-ready)."""
    return MessageRead.model_validate(message).model_dump(mode="json")


async def follow(
    database: ChatDatabase,
    fanout: Fanout,
    *,
    chat_id: uuid.UUID,
    resume: ResumePoint | None,
    heartbeat_seconds: float,
) -> AsyncIterator[Batch | None]:
    """A chat's events from the resume point on (None is a heartbeat)."""
    exits = contextlib.ExitStack()
    subscription = exits.enter_context(fanout.subscribe(str(chat_id)))
    try:
        cursor = StreamCursor()
        async with database.reading() as session:
            chats = ChatRepository(session)
            messages: Sequence[Message] = []
            if resume is not None:
                messages = await chats.messages_from(
                    chat_id, first_id=resume.message_id, limit=_REPLAY_LIMIT
                )
                if any(message.id == resume.message_id for message in messages):
                    cursor.resume_at(str(resume.message_id), resume.position)
                else:
                    messages = []
                    resume = None
            if resume is None:
                messages = await chats.in_flight_messages(chat_id)
            stored = [message_dict(message) for message in messages]
        replay = [(message, await content_now(fanout, message)) for message in stored]
    except BaseException:
        exits.close()
        raise
    frames = stream_frames(
        subscription, exits, cursor=cursor, replay=replay, heartbeat_seconds=heartbeat_seconds
    )
    async for batch in frames:
        yield batch


def follow_send(
    fanout: Fanout, result: dict[str, Any], *, heartbeat_seconds: float
) -> AsyncIterator[Batch | None]:
    """The stream of a send being answered: subscribed before its messages are announced; it
    ends once the send's last reply is whole (each reply of a turn of several agents)."""
    messages = [result["user_message"], *_replies(result)]
    exits = contextlib.ExitStack()
    subscription = exits.enter_context(fanout.subscribe(str(result["chat_id"])))
    return stream_frames(
        subscription,
        exits,
        cursor=StreamCursor(only={message["id"] for message in messages}),
        replay=[(message, "") for message in messages],
        until=tuple(message["id"] for message in messages[1:]),
        heartbeat_seconds=heartbeat_seconds,
    )


def _replies(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The replies a send started, in order (an answer stored before turns has only one)."""
    return list(result.get("agent_messages") or [result["agent_message"]])


async def replay_send(
    database: ChatDatabase,
    fanout: Fanout,
    result: dict[str, Any],
    *,
    heartbeat_seconds: float,
) -> AsyncIterator[Batch | None]:
    """The stream of an earlier send (same Idempotency-Key): its messages, from the top."""
    chat_id = uuid.UUID(result["chat_id"])
    ids = [result["user_message"]["id"], *(reply["id"] for reply in _replies(result))]
    exits = contextlib.ExitStack()
    subscription = exits.enter_context(fanout.subscribe(str(chat_id)))
    try:
        async with database.reading() as session:
            messages = await ChatRepository(session).messages_by_ids(
                chat_id, [uuid.UUID(i) for i in ids]
            )
            stored = [message_dict(message) for message in messages]
        replay = [(message, await content_now(fanout, message)) for message in stored]
    except BaseException:
        exits.close()
        raise
    frames = stream_frames(
        subscription,
        exits,
        cursor=StreamCursor(only=set(ids)),
        replay=replay,
        until=tuple(ids[1:]),
        heartbeat_seconds=heartbeat_seconds,
    )
    async for batch in frames:
        yield batch


async def content_now(fanout: Fanout, message: dict[str, Any]) -> str:
    """The freshest content of a message: the live snapshot while it streams."""
    if message["status"] in ("pending", "streaming"):
        snapshot = await fanout.snapshot(str(message["id"]))
        if snapshot is not None and len(snapshot) >= len(message["content"]):
            return snapshot
    return str(message["content"])


def _ends_stream(
    event: dict[str, Any], cursor: StreamCursor, until: tuple[str, ...] | None
) -> bool:
    """Whether a stream is over after this event: its chat was deleted, or the messages it
    waited for are whole."""
    if event.get("type") == DELETED:
        return True
    return until is not None and all(cursor.is_finished(message) for message in until)


async def stream_frames(
    subscription: Subscription,
    exits: contextlib.ExitStack,
    *,
    cursor: StreamCursor,
    replay: list[tuple[dict[str, Any], str]],
    heartbeat_seconds: float,
    until: tuple[str, ...] | None = None,
) -> AsyncIterator[Batch | None]:
    """Replay, then live events; ends once every message of `until` is whole (or when cut off:
    a stopped turn may end its later replies before the one that was streaming).

    Events already queued when the subscriber gets to them go out in one batch: a subscriber
    that fell behind catches up with one write instead of one per event."""
    with exits:
        batch = [frame for message, content in replay for frame in cursor.replay(message, content)]
        if batch:
            yield batch
        if until is not None and all(cursor.is_finished(message) for message in until):
            return
        while True:
            try:
                event = await subscription.next(heartbeat_seconds)
            except TimeoutError:
                yield None
                continue
            except EOFError:
                return
            batch = cursor.accept(event)
            finished = _ends_stream(event, cursor, until)
            waiting = subscription.ready()
            while not finished and (queued := next(waiting, None)) is not None:
                batch += cursor.accept(queued)
                finished = _ends_stream(queued, cursor, until)
            if batch:
                yield batch
            if finished:
                return
