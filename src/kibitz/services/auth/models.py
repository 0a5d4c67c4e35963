"""The auth service's tables: users, refresh token families and tokens, signing keys, outbox."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, String, Text, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kibitz.kit.events import define_outbox_table


class Base(DeclarativeBase):
    """Metadata of the auth database (and only it)."""


class User(Base):
    """Credentials of one person; the email is stored normalised, so uniqueness ignores case."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    # None for a person who signs in only through an identity provider.
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    full_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RefreshTokenFamily(Base):
    """One login session: every refresh token rotated from the same login shares it."""

    __tablename__ = "refresh_token_families"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # "logout" or "reuse": why the family stopped working.
    revoked_reason: Mapped[str | None] = mapped_column(String(20), nullable=True)


class RefreshToken(Base):
    """One opaque refresh token, stored as its SHA-256 hash; spent when rotated."""

    __tablename__ = "refresh_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    family_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("refresh_token_families.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    spent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SigningKeyRecord(Base):
    """An Ed25519 signing key shared by every auth replica; published until retired."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    private_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Active keys may sign: the newest one published long enough does (service.KeyRing).
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # When it stops being published (a rotated-out key: once the tokens it signed expired).
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SessionRevocation(Base):
    """A session ended before its access tokens expired: every process refuses its tokens
    until `expires_at` (kit/session_revocations.py asks for the newest by `revoked_at`)."""

    __tablename__ = "session_revocations"

    session_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    revoked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


outbox_table = define_outbox_table(Base.metadata)
