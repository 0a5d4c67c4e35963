"""Reply jobs' leases on a migrated database: renewed by their holder, taken only once lapsed."""

from __future__ import annotations

import asyncio
import uuid

from tests.services.chat.test_repository import USER, chat_db, new_chat  # noqa: F401

from kibitz.services.chat.models import utcnow
from kibitz.services.chat.replies.repository import ReplyJobRepository
from kibitz.services.chat.repository import ChatRepository
from kibitz.services.chat.storage import ChatDatabase


async def a_reply_job(db: ChatDatabase, *, holder: str, lease_seconds: float) -> uuid.UUID:
    chat_id = await new_chat(db, 2, status="streaming", job=False)
    async with db.transaction() as session:
        agent, _user = await ChatRepository(session).history_page(chat_id, limit=2, before=None)
        await ReplyJobRepository(session).add(
            message_id=agent.id,
            tenant_id=agent.tenant_id,
            user_id=USER,
            payload={"order": 1},
            holder=holder,
            lease_seconds=lease_seconds,
        )
    return agent.id


async def test_a_held_lease_is_renewed_by_its_holder_and_taken_by_nobody_else(
    chat_db: ChatDatabase,  # noqa: F811
) -> None:
    job = await a_reply_job(chat_db, holder="first", lease_seconds=30)
    async with chat_db.transaction() as session:
        jobs = ReplyJobRepository(session)
        assert await jobs.renew(job, holder="first", lease_seconds=30)
        assert not await jobs.renew(job, holder="other", lease_seconds=30)
        assert await jobs.claim(job, holder="other", presented=None, lease_seconds=30) is None
        assert not await jobs.hand_over(job, holder="sweep", lease_seconds=30)
    async with chat_db.reading() as session:
        jobs = ReplyJobRepository(session)
        assert await jobs.lapsed(now=utcnow(), unclaimed_before=utcnow()) == []


async def test_a_lapsed_lease_is_swept_handed_over_and_claimed_once(
    chat_db: ChatDatabase,  # noqa: F811
) -> None:
    job = await a_reply_job(chat_db, holder="dead", lease_seconds=0.05)
    await asyncio.sleep(0.1)
    async with chat_db.reading() as session:
        lapsed = await ReplyJobRepository(session).lapsed(now=utcnow(), unclaimed_before=utcnow())
    assert lapsed == [job]
    async with chat_db.transaction() as session:
        jobs = ReplyJobRepository(session)
        assert await jobs.hand_over(job, holder="sweep", lease_seconds=30)
        assert not await jobs.renew(job, holder="dead", lease_seconds=30)  # the old holder lost it
        taken = await jobs.claim(job, holder="new", presented="sweep", lease_seconds=30)
        assert taken is not None and taken.attempts == 2 and taken.payload == {"order": 1}
        assert await jobs.claim(job, holder="late", presented="sweep", lease_seconds=30) is None
        await jobs.remove(job)
        assert await jobs.claim(job, holder="new", presented="new", lease_seconds=30) is None
