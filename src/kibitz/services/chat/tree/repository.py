"""The queries of a chat's message tree: walking a branch, its newest leaf, a message's siblings.

A branch is walked from its newest end up through `parent_id`, one primary-key lookup per step
(a recursive CTE stopped after the page: SQLite and PostgreSQL alike), so a page costs the same at
the top of a 100 000-message branch as at its bottom (bench/history.py). The newest leaf is the
newest message without a child: a backward scan of (chat_id, id) that stops at the first one,
normally the newest message itself. Delegated answers (an orchestrator's consultations) hang off
their orchestrator's reply and are never a step, a leaf or a sibling."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import (
    CTE,
    Integer,
    Select,
    Table,
    and_,
    bindparam,
    exists,
    false,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from kibitz.services.chat.models import Message

_MESSAGES = cast(Table, Message.__table__)


def _childless(messages: Any) -> Any:
    children = _MESSAGES.alias("child")
    return ~exists().where(
        children.c.chat_id == messages.c.chat_id,
        children.c.parent_id == messages.c.id,
        children.c.delegated == false(),
    )


def newest_leaf(chat_id: Any) -> Select[uuid.UUID]:
    """The newest message of the chat that nothing follows (its default branch ends there)."""
    leaves = _MESSAGES.alias("leaf")
    return (
        select(leaves.c.id)
        .where(leaves.c.chat_id == chat_id, leaves.c.delegated == false(), _childless(leaves))
        .order_by(leaves.c.id.desc())
        .limit(1)
    )


def branch_up(chat_id: Any, start: Any, steps: Any, *, name: str = "branch") -> CTE:
    """`(id, parent_id, step)` of `start` (step 0) and its ancestors, at most `steps` rows."""
    anchor = select(_MESSAGES.c.id, _MESSAGES.c.parent_id, literal(0, Integer).label("step")).where(
        _MESSAGES.c.chat_id == chat_id, _MESSAGES.c.id == start
    )
    branch = anchor.cte(name, recursive=True)
    above = _MESSAGES.alias("above")
    return branch.union_all(
        select(above.c.id, above.c.parent_id, (branch.c.step + 1).label("step")).where(
            above.c.id == branch.c.parent_id, branch.c.step + 1 < steps
        )
    )


def _newest_child(chat_id: Any, parent: Any) -> Any:
    children = _MESSAGES.alias("newest_child")
    return (
        select(children.c.id)
        .where(
            children.c.chat_id == chat_id,
            children.c.parent_id == parent,
            children.c.delegated == false(),
        )
        .order_by(children.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )


# From a message down to where its conversation went last: its newest child, that one's newest
# child, … (one index lookup a step; a leaf is its own end).
_DOWN_ANCHOR = select(
    bindparam("message_id", type_=_MESSAGES.c.id.type).label("id"),
    literal(0, Integer).label("step"),
).cte("down", recursive=True)
_DOWN = _DOWN_ANCHOR.union_all(
    select(
        _newest_child(bindparam("chat_id", type_=_MESSAGES.c.chat_id.type), _DOWN_ANCHOR.c.id),
        (_DOWN_ANCHOR.c.step + 1).label("step"),
    ).where(_DOWN_ANCHOR.c.id.is_not(None))
)
_END_BELOW = (
    select(_DOWN.c.id).where(_DOWN.c.id.is_not(None)).order_by(_DOWN.c.step.desc()).limit(1)
)


def children(chat_id: Any, parent_ids: Sequence[uuid.UUID | None]) -> Select[Any, Any]:
    """`(parent_id, id)` of the children of these messages (None: the chat's roots)."""
    named = [parent for parent in parent_ids if parent is not None]
    under = [_MESSAGES.c.parent_id.in_(named)] if named else []
    if len(named) < len(parent_ids):
        under.append(_MESSAGES.c.parent_id.is_(None))
    return (
        select(_MESSAGES.c.parent_id, _MESSAGES.c.id)
        .where(
            and_(_MESSAGES.c.chat_id == chat_id, _MESSAGES.c.delegated == false()),
            or_(*under),
        )
        # In the order of (chat_id, parent_id, id): ordered by id alone, SQLite would walk the
        # whole chat on (chat_id, id) to skip a sort of a few rows.
        .order_by(_MESSAGES.c.parent_id, _MESSAGES.c.id)
    )


class TreeRepository:
    """Reads of a chat's tree; the chat's owner was checked by the caller."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def newest_leaf(self, chat_id: uuid.UUID) -> uuid.UUID | None:
        """Where the chat's default branch ends (None for a chat without messages)."""
        result = await self.session.execute(newest_leaf(chat_id))
        leaf: uuid.UUID | None = result.scalar_one_or_none()
        return leaf

    async def end_below(self, chat_id: uuid.UUID, message_id: uuid.UUID) -> uuid.UUID:
        """The leaf reached from a message by following the newest child at each step."""
        result = await self.session.execute(
            _END_BELOW, {"message_id": message_id, "chat_id": chat_id}
        )
        return result.scalar_one_or_none() or message_id

    async def get(self, chat_id: uuid.UUID, message_id: uuid.UUID) -> Message | None:
        """The chat's message, if it has one by that id."""
        statement = select(Message).where(Message.chat_id == chat_id, Message.id == message_id)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def branch(self, chat_id: uuid.UUID, *, start: Any, steps: int) -> list[Message]:
        """`start` and up to `steps - 1` of its ancestors, newest first."""
        walk = branch_up(chat_id, start, steps)
        row = aliased(Message, _MESSAGES)
        statement = select(row).join(walk, walk.c.id == row.id).order_by(walk.c.step).limit(steps)
        return list((await self.session.execute(statement)).scalars().all())

    async def steps(
        self, chat_id: uuid.UUID, *, start: uuid.UUID, steps: int
    ) -> list[tuple[uuid.UUID, uuid.UUID | None]]:
        """`(id, parent_id)` of `start` and up to `steps - 1` of its ancestors, newest first."""
        walk = branch_up(chat_id, start, steps)
        statement = select(walk.c.id, walk.c.parent_id).order_by(walk.c.step).limit(steps)
        return [(row[0], row[1]) for row in (await self.session.execute(statement)).all()]

    async def children_of(
        self, chat_id: uuid.UUID, parent_ids: Sequence[uuid.UUID | None]
    ) -> list[tuple[uuid.UUID | None, uuid.UUID]]:
        """`(parent_id, id)` of every child of these messages (None: the chat's roots), each
        parent's oldest first; delegated answers left out."""
        if not parent_ids:
            return []
        statement = children(chat_id, parent_ids)
        return [(row[0], row[1]) for row in (await self.session.execute(statement)).all()]

    async def delegated_under(
        self, chat_id: uuid.UUID, parent_ids: Sequence[uuid.UUID]
    ) -> list[Message]:
        """The answers orchestrators among these messages asked for, oldest first."""
        if not parent_ids:
            return []
        statement = (
            select(Message)
            .where(
                Message.chat_id == chat_id,
                Message.parent_id.in_(parent_ids),
                Message.delegated == true(),
            )
            .order_by(Message.parent_id, Message.id)
        )
        return list((await self.session.execute(statement)).scalars().all())
