"""The tenants service's tables: tenants, memberships, invites, usage counters, outbox, inbox."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kibitz.kit.events import define_inbox_tables, define_outbox_table


class Base(DeclarativeBase):
    """Metadata of the tenants database (and only it)."""


class Tenant(Base):
    """An organisation on a plan; `limits` holds this tenant's overrides of the plan's limits."""

    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    plan: Mapped[str] = mapped_column(String(50))
    limits: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The `sequence` of the last `billing.subscription_changed` applied: an older one arriving
    # late is ignored.
    billing_sequence: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Membership(Base):
    """A user's place in a tenant (one tenant per user) and role there."""

    __tablename__ = "memberships"

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(20))
    joined_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Invite(Base):
    """A single-use code to join a tenant; only the code's SHA-256 hash is stored."""

    __tablename__ = "invites"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    created_by: Mapped[uuid.UUID] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    used_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)


class UsageCounter(Base):
    """How much of a metric a tenant used in a period (`2026-11-26`: a day, `2026-11`: a month)."""

    __tablename__ = "usage_counters"

    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    metric: Mapped[str] = mapped_column(String(20), primary_key=True)
    period: Mapped[str] = mapped_column(String(10), primary_key=True)
    used: Mapped[int] = mapped_column(BigInteger, default=0)


class UsageReservation(Base):
    """One granted reservation, remembered by its idempotency key."""

    __tablename__ = "usage_reservations"
    __table_args__ = (Index("ix_usage_reservations_created_at", "created_at"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    metric: Mapped[str] = mapped_column(String(20))
    period: Mapped[str] = mapped_column(String(10))
    amount: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


outbox_table = define_outbox_table(Base.metadata)
inbox_table, dead_letter_table = define_inbox_tables(Base.metadata)
