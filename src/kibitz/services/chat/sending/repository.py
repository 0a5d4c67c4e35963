"""The sending steps' queries: the reads of every send to an existing chat (the chat, the user's
replies in flight and the branch the new message continues, in one statement), and the
remembered Idempotency-Keys."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    Boolean,
    Table,
    Uuid,
    bindparam,
    case,
    delete,
    func,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kibitz.services.chat.models import Chat, IdempotencyKey, Message, ReplyJob
from kibitz.services.chat.tree.placement import Placement
from kibitz.services.chat.tree.repository import branch_up, newest_leaf

_CHATS = cast(Table, Chat.__table__)
_MESSAGES = cast(Table, Message.__table__)
_JOBS = cast(Table, ReplyJob.__table__)

# Built once, with placeholders: building and cache-keying a statement on each call costs
# SQLAlchemy several times what running it does.
# A user's replies in flight are their reply jobs: a turn of several agents has one at a time
# (its later replies wait without one), so it counts as one generation. Jobs of replies nobody
# advanced since `since` no longer count.
_IN_FLIGHT_COUNT = select(func.count()).where(
    _JOBS.c.user_id == bindparam("user_id"),
    or_(_JOBS.c.lease_until.is_(None), _JOBS.c.lease_until >= bindparam("since")),
)
# The branch a send continues: its parent (given, or the chat's newest leaf) and the parent's
# ancestors, newest first, as far as the context goes. No rows for a new root.
_PARENT = case(
    (
        bindparam("from_leaf", type_=Boolean()),
        newest_leaf(bindparam("chat_id", type_=Uuid())).scalar_subquery(),
    ),
    else_=bindparam("parent", type_=Uuid()),
)
_BRANCH = branch_up(bindparam("chat_id", type_=Uuid()), _PARENT, bindparam("limit"), name="recent")
_RECENT = (
    select(
        _MESSAGES.c.id, _MESSAGES.c.sender, _MESSAGES.c.content, _MESSAGES.c.status, _BRANCH.c.step
    )
    .join(_BRANCH, _BRANCH.c.id == _MESSAGES.c.id)
    .subquery("recent_messages")
)
# Whether a row is the view's first (the parent's, or the only one of a chat without messages):
# the chat's columns and the message's id are read from it alone, so the other rows carry NULLs
# that cost no conversion (the ids and JSON of 20 rows were a third of the statement's time).
_FIRST_ROW = or_(_RECENT.c.step == 0, _RECENT.c.step.is_(None))


def _first_row_only(column: Any) -> Any:
    return case((_FIRST_ROW, column)).label(column.name)


# A send to an existing chat: the owner's view of the chat, the user's replies in flight and the
# branch it continues, newest first: one row per message (one with empty message columns when
# there is none), none when the chat is not the caller's.
_SEND_VIEW = (
    select(
        _first_row_only(_CHATS.c.agent_id),
        _first_row_only(_CHATS.c.title),
        _first_row_only(_CHATS.c.agent_ids),
        _first_row_only(_CHATS.c.mode),
        _IN_FLIGHT_COUNT.scalar_subquery().label("in_flight"),
        _first_row_only(_RECENT.c.id),
        _RECENT.c.sender,
        _RECENT.c.content,
        _RECENT.c.status,
    )
    .select_from(_CHATS.outerjoin(_RECENT, true()))
    .where(
        _CHATS.c.id == bindparam("chat_id"),
        _CHATS.c.tenant_id == bindparam("tenant_id"),
        _CHATS.c.user_id == bindparam("user_id"),
    )
    .order_by(_RECENT.c.step)
)


class RecentMessage(NamedTuple):
    """What a reply's context needs of one message (and the id of the newest, the parent)."""

    id: uuid.UUID | None
    sender: str
    content: str
    status: str


@dataclass(frozen=True)
class SendView:
    """What a send to an existing chat reads: the chat's agent and title, how many of the
    user's replies are in flight, and the branch it continues (from its parent up), newest
    first."""

    agent_id: uuid.UUID
    title: str
    in_flight: int
    history: list[RecentMessage]
    # The participants (the default first) and how they answer.
    agent_ids: list[uuid.UUID]
    mode: str

    @property
    def parent_id(self) -> uuid.UUID | None:
        """The message the new one follows (None: a new root)."""
        return self.history[0].id if self.history else None


class SendReads:
    """The reads of every send, one statement each, on a plain connection: an ORM session's
    bookkeeping would cost more than the statements."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def in_flight(self, *, user_id: uuid.UUID, since: datetime) -> int:
        """How many of the user's replies are being generated (touched after `since`)."""
        parameters = {"user_id": user_id, "since": since}
        return int((await self.connection.execute(_IN_FLIGHT_COUNT, parameters)).scalar_one())

    async def existing_chat(
        self,
        chat_id: uuid.UUID,
        *,
        tenant_id: uuid.UUID,
        user_id: uuid.UUID,
        since: datetime,
        placement: Placement,
        limit: int,
    ) -> SendView | None:
        """The chat if it belongs to this user of this tenant, with the user's replies in flight
        (touched after `since`) and the `limit` newest messages of the branch the new message
        continues (its parent first)."""
        parameters = {
            "chat_id": chat_id,
            "tenant_id": tenant_id,
            "user_id": user_id,
            "since": since,
            "from_leaf": placement.after_newest_leaf,
            "parent": placement.parent_id,
            "limit": limit,
        }
        rows = (await self.connection.execute(_SEND_VIEW, parameters)).all()
        if not rows:
            return None
        agent_id, title, agent_ids, mode, in_flight = rows[0][:5]
        return SendView(
            agent_id=agent_id,
            title=title,
            in_flight=int(in_flight),
            # A chat without messages reads as one row whose message columns are empty.
            history=[RecentMessage(*row[5:]) for row in rows if row[6]],
            agent_ids=[uuid.UUID(str(value)) for value in agent_ids or [agent_id]],
            mode=mode or "direct",
        )


class IdempotencyRepository:
    """Remembered Idempotency-Keys, per user."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, *, user_id: uuid.UUID, key: str) -> IdempotencyKey | None:
        """The remembered key of this user."""
        return await self.session.get(IdempotencyKey, (user_id, key), populate_existing=True)

    async def claim(self, *, user_id: uuid.UUID, key: str, request_hash: str) -> None:
        """Insert the key (raises IntegrityError when another request holds it)."""
        self.session.add(IdempotencyKey(user_id=user_id, key=key, request_hash=request_hash))
        await self.session.flush()

    async def remove(self, *, user_id: uuid.UUID, key: str, unanswered_only: bool = False) -> None:
        """Forget the key (only while it has no answer, if so asked)."""
        statement = delete(IdempotencyKey).where(
            IdempotencyKey.user_id == user_id, IdempotencyKey.key == key
        )
        if unanswered_only:
            statement = statement.where(IdempotencyKey.response.is_(None))
        await self.session.execute(statement)

    async def remove_expired(self, *, before: datetime) -> None:
        """Forget keys older than the retention window."""
        await self.session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < before))

    async def record(self, *, user_id: uuid.UUID, key: str, response: dict[str, Any]) -> None:
        """Remember the first answer."""
        await self.session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
            .values(response=response)
        )
