"""Chat's tables: chats, messages, reply jobs, remembered Idempotency-Keys and the outbox."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    Uuid,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.expression import false

from kibitz.kit.events import define_outbox_table
from kibitz.kit.ids import new_id


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


outbox_table = define_outbox_table(Base.metadata)


class Sender(enum.StrEnum):
    USER = "user"
    AGENT = "agent"


class MessageStatus(enum.StrEnum):
    PENDING = "pending"
    STREAMING = "streaming"
    COMPLETE = "complete"
    FAILED = "failed"
    STOPPED = "stopped"

    @property
    def finished(self) -> bool:
        """Whether nothing more will be written to the message."""
        return self in (MessageStatus.COMPLETE, MessageStatus.FAILED, MessageStatus.STOPPED)


IN_FLIGHT = (MessageStatus.PENDING.value, MessageStatus.STREAMING.value)


class Chat(Base):
    __tablename__ = "chats"
    # "My chats, newest first" is one index range scan.
    __table_args__ = (Index("ix_chats_owner_updated", "tenant_id", "user_id", "updated_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    # The default agent: the first of `agent_ids`.
    agent_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    # The participants (1 to 8 agent ids as strings, the default first) and how they answer.
    agent_ids: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    # A server default, not a Python one: inserts that leave it out work on older schemas too.
    mode: Mapped[str] = mapped_column(String(16), nullable=False, server_default="direct")
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        # Keyset pagination on time-ordered ids: a page costs the same at 10 or 100 000 rows.
        Index("ix_messages_chat_id_id", "chat_id", "id"),
        # Counting a user's replies in flight (the concurrency cap).
        Index("ix_messages_user_status", "user_id", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    chat_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("chats.id", ondelete="CASCADE"), nullable=False
    )
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    sender: Mapped[str] = mapped_column(String(10), nullable=False)
    # The agent that wrote a reply (null for the user's messages).
    agent_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    # The message this one follows; for a delegated answer, the orchestrator's reply.
    parent_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    # An answer a participant gave the orchestrator (nested under its reply, not a branch). A
    # server default, not a Python one: inserts written for older schemas leave it out.
    delegated: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=false())
    content: Mapped[str] = mapped_column(Text, nullable=False, default="")
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    input_tokens: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    finish_reason: Mapped[str | None] = mapped_column(String(50), nullable=True)
    error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # The knowledge sources an agent's reply was given: [{document_id, title, text, score}].
    citations: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class IdempotencyKey(Base):
    """The first answer to a send with a given Idempotency-Key, per user (kept 24 h)."""

    __tablename__ = "idempotency_keys"

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    # Null while the first request is still being handled.
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class ReplyJob(Base):
    """A reply still to be generated or being generated: the job's durable half (the work queue
    carries only its id). The row exists exactly while the reply is in flight, so counting a
    user's rows is the concurrent-reply cap; `lease_until` says until when its generator holds
    it (null: nobody yet)."""

    __tablename__ = "reply_jobs"
    __table_args__ = (
        Index("ix_reply_jobs_user", "user_id"),
        Index("ix_reply_jobs_lease", "lease_until"),
    )

    message_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    # What the generator needs: the chat, agent, context, the user's message id, and whose
    # reply it is (no token: agents is asked by chat's service credential, for this user).
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    # The lease: who holds it (a random token per claim) and until when.
    holder: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
