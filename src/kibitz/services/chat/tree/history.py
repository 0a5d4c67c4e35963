"""A chat's history is one branch of its tree: from the root to a leaf, a page at a time."""

from __future__ import annotations

import uuid
from collections import defaultdict

from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.services.chat.errors import MessageNotFound
from kibitz.services.chat.models import Chat, Message
from kibitz.services.chat.schemas import BranchMessage, ChatRead, HistoryPage, MessageRead
from kibitz.services.chat.tree.repository import TreeRepository, newest_leaf


async def branch_page(
    session: AsyncSession,
    *,
    chat: Chat,
    limit: int,
    before: uuid.UUID | None,
    leaf: uuid.UUID | None,
) -> HistoryPage:
    """Up to `limit` messages of a branch, oldest first: the ancestors of `before` (a cursor),
    else the branch through `leaf` (down to where its conversation went last), else the branch
    of the newest leaf. 404 when `before` or `leaf` is not a message of the chat."""
    tree = TreeRepository(session)
    start: object
    if before is not None:
        anchor = await tree.get(chat.id, before)
        if anchor is None:
            raise MessageNotFound()
        start = anchor.parent_id
    elif leaf is not None:
        if await tree.get(chat.id, leaf) is None:
            raise MessageNotFound()
        start = await tree.end_below(chat.id, leaf)
    else:
        start = newest_leaf(chat.id).scalar_subquery()
    rows = await tree.branch(chat.id, start=start, steps=limit + 1) if start is not None else []
    page = rows[:limit]
    next_cursor = str(page[-1].id) if len(rows) > limit else None
    page.reverse()
    return HistoryPage(
        chat=ChatRead.model_validate(chat),
        messages=await with_siblings(tree, chat.id, page),
        next_cursor=next_cursor,
    )


async def branch_ids(
    session: AsyncSession, *, chat_id: uuid.UUID, leaf: uuid.UUID | None, batch: int
) -> list[uuid.UUID]:
    """Every message id of a branch (through `leaf`, else the newest leaf's), root first: walked
    up `batch` steps a statement (404 when `leaf` is not the chat's)."""
    tree = TreeRepository(session)
    start: uuid.UUID | None
    if leaf is not None:
        if await tree.get(chat_id, leaf) is None:
            raise MessageNotFound()
        start = await tree.end_below(chat_id, leaf)
    else:
        start = await tree.newest_leaf(chat_id)
    ids: list[uuid.UUID] = []
    while start is not None:
        steps = await tree.steps(chat_id, start=start, steps=batch)
        ids += [message_id for message_id, _ in steps]
        start = steps[-1][1] if len(steps) == batch else None
    ids.reverse()
    return ids


async def with_siblings(
    tree: TreeRepository, chat_id: uuid.UUID, page: list[Message]
) -> list[BranchMessage]:
    """The messages as the API shows a branch: each with the ids of its alternatives."""
    siblings: dict[uuid.UUID | None, list[uuid.UUID]] = defaultdict(list)
    for parent_id, message_id in await tree.children_of(
        chat_id, list({message.parent_id for message in page})
    ):
        siblings[parent_id].append(message_id)
    # An orchestrator's reply brings the answers it asked for, right after it (the client nests
    # them under it): they are not steps of the branch, so they never count against the page.
    asked: dict[uuid.UUID, list[Message]] = defaultdict(list)
    replies = [message.id for message in page if message.sender == "agent"]
    for answer in await tree.delegated_under(chat_id, replies):
        assert answer.parent_id is not None
        asked[answer.parent_id].append(answer)
    shown: list[BranchMessage] = []
    for message in page:
        shown.append(
            BranchMessage(
                **MessageRead.model_validate(message).model_dump(),
                sibling_ids=siblings.get(message.parent_id) or [message.id],
            )
        )
        shown += [
            BranchMessage(
                **MessageRead.model_validate(answer).model_dump(), sibling_ids=[answer.id]
            )
            for answer in asked.get(message.id, [])
        ]
    return shown
