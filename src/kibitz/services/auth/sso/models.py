"""The single sign-on tables (in the auth database): linked identities, tenants' providers and
their email domains, and the sign-in states already used."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from kibitz.services.auth.models import Base


class LinkedIdentity(Base):
    """A person's account at an identity provider, linked to a kibitz user."""

    __tablename__ = "sso_identities"
    __table_args__ = (UniqueConstraint("provider_id", "subject"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # A deployment provider's id ("google"), or a tenant provider's UUID as text.
    provider_id: Mapped[str] = mapped_column(String(64))
    # The provider's stable id of the person (OIDC `sub`, GitHub's numeric user id).
    subject: Mapped[str] = mapped_column(String(255))
    email: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TenantIdentityProvider(Base):
    """A tenant's own OpenID Connect provider (one per tenant)."""

    __tablename__ = "sso_tenant_providers"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    issuer: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(255))
    # Fernet token of the client secret; never the secret itself.
    client_secret_encrypted: Mapped[str] = mapped_column(Text)
    # Password login and registration refused for the tenant's domains.
    enforce: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TenantEmailDomain(Base):
    """An email domain and the tenant whose provider it belongs to (the key: one tenant each)."""

    __tablename__ = "sso_tenant_domains"

    domain: Mapped[str] = mapped_column(String(253), primary_key=True)
    provider_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("sso_tenant_providers.id", ondelete="CASCADE"), index=True
    )
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)


class SpentLoginState(Base):
    """A sign-in's `state`, hashed, once its callback has been handled: each works once."""

    __tablename__ = "sso_spent_states"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
