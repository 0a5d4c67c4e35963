"""Business rules of accounts: the password policy, registration (with the tenants service
making or joining the tenant), login and sign-in; a session is opened through `sessions/`.

Register and login open their own short transactions instead of one per request: argon2 takes
tens of milliseconds and the tenants call is a network round trip, and neither may run while a
transaction holds SQLite's write lock.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

import structlog
from prometheus_client import Counter
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.kit.db import Database
from kibitz.kit.errors import GatewayTimeout, ServiceUnavailable
from kibitz.kit.events import Outbox
from kibitz.kit.http import ServiceClient
from kibitz.kit.ids import new_id
from kibitz.kit.passwords import hash_password, verify_password
from kibitz.services.auth import repository
from kibitz.services.auth.errors import (
    EmailTaken,
    InvalidCredentials,
    InviteRejectedError,
    InvitesNeedTenants,
    TenantsUnavailable,
    TooManyLoginAttempts,
    UnknownUser,
    UserNotFound,
    WeakPassword,
)
from kibitz.services.auth.events import user_registered
from kibitz.services.auth.login_throttle import LoginThrottle
from kibitz.services.auth.models import User
from kibitz.services.auth.sessions.service import IssuedSession, Sessions
from kibitz.services.auth.signing_keys.service import KeyRing
from kibitz.services.auth.sso import repository as sso_repository
from kibitz.services.auth.sso.errors import SsoRequired
from kibitz.services.auth.sso.models import LinkedIdentity

logger = structlog.get_logger("kibitz.auth")

LOGINS = Counter("kibitz_auth_logins_total", "Login attempts by outcome", ["outcome"])

ROLE_OWNER = "owner"
_ROLES = frozenset({"owner", "admin", "member"})


# --- passwords ------------------------------------------------------------------------------


@cache
def common_passwords() -> frozenset[str]:
    """The bundled list of the most common passwords (lower-case)."""
    text = resources.files("kibitz.services.auth").joinpath("common_passwords.txt").read_text()
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def check_password_policy(password: str, *, email: str) -> None:
    """ASVS 5.0: length is checked by the schema; refuse common and obvious passwords."""
    lowered = password.lower()
    if lowered in common_passwords():
        raise WeakPassword("This password is too common; choose a less predictable one.")
    if lowered in (email, email.split("@", 1)[0]):
        raise WeakPassword("The password must not be your email address.")


# --- accounts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TenantMembership:
    """The tenant a new user belongs to and their role in it."""

    tenant_id: uuid.UUID
    role: str
    tenant_name: str | None


def email_domain(email: str) -> str:
    """The lower-case domain of a (normalised) email address."""
    return email.rsplit("@", 1)[-1].strip().lower()


class AuthService:
    """Accounts: register, login and sign-in, each opening a session (`sessions`)."""

    def __init__(
        self,
        *,
        database: Database,
        sessions: Sessions,
        outbox: Outbox,
        throttle: LoginThrottle,
        tenants: ServiceClient | None,
    ) -> None:
        self.database = database
        self.sessions = sessions
        self.outbox = outbox
        self.throttle = throttle
        self.tenants = tenants

    @property
    def keys(self) -> KeyRing:
        """The signing keys (the JWKS route publishes them)."""
        return self.sessions.keys

    async def register(
        self,
        *,
        email: str,
        password: str,
        full_name: str | None,
        tenant_name: str | None,
        invite_code: str | None,
    ) -> IssuedSession:
        """Create the account (and its tenant, or join one by invite) and open a session."""
        check_password_policy(password, email=email)
        if invite_code and self.tenants is None:
            raise InvitesNeedTenants()
        async with self.database.transaction() as session:
            await self._refuse_passwords_where_sso_is_enforced(session, email=email, user=None)
            if await repository.email_taken(session, email=email):
                raise EmailTaken()
        password_hash = await hash_password(password)
        return await self.create_account(
            email=email,
            password_hash=password_hash,
            full_name=full_name,
            tenant_name=tenant_name,
            invite_code=invite_code,
        )

    async def create_account(
        self,
        *,
        email: str,
        password_hash: str | None,
        full_name: str | None,
        tenant_name: str | None = None,
        invite_code: str | None = None,
        join_tenant_id: uuid.UUID | None = None,
        identity: LinkedIdentity | None = None,
    ) -> IssuedSession:
        """Store a new account (in a new tenant, or one joined by invite or by `join_tenant_id`),
        with its first linked identity if any, and open a session."""
        user_id = new_id()
        membership = await self._join_tenant(
            user_id=user_id,
            email=email,
            tenant_name=tenant_name,
            invite_code=invite_code,
            join_tenant_id=join_tenant_id,
        )
        user = User(
            id=user_id,
            email=email,
            password_hash=password_hash,
            full_name=full_name,
            tenant_id=membership.tenant_id,
            role=membership.role,
            created_at=datetime.now(UTC),
        )
        try:
            async with self.database.transaction() as session:
                try:
                    await repository.add_user(session, user)
                    if identity is not None:
                        identity.user_id = user.id
                        await sso_repository.add_identity(session, identity)
                except IntegrityError as exc:
                    raise EmailTaken() from exc
                await self.outbox.add(
                    session,
                    user_registered(user, tenant_name=membership.tenant_name or tenant_name),
                )
                refresh_token, session_id = await self.sessions.start(session, user_id=user.id)
        except Exception:
            # Another registration took the email meanwhile (or the write failed): the tenant
            # made for this account, or the invite it used, must not stay behind.
            await self._undo_join(user_id)
            raise
        logger.info("user_registered", user_id=str(user.id), tenant_id=str(user.tenant_id))
        return self.sessions.issue(user, refresh_token, session_id)

    async def _undo_join(self, user_id: uuid.UUID) -> None:
        if self.tenants is None:
            return
        try:
            response = await self.tenants.request(
                "DELETE", f"/tenants/internal/memberships/{user_id}"
            )
        except (ServiceUnavailable, GatewayTimeout):
            response = None
        if response is None or response.status_code != 204:
            logger.warning("tenants_undo_join_failed", user_id=str(user_id))

    async def _join_tenant(
        self,
        *,
        user_id: uuid.UUID,
        email: str,
        tenant_name: str | None,
        invite_code: str | None,
        join_tenant_id: uuid.UUID | None,
    ) -> TenantMembership:
        if self.tenants is None:
            # No tenants service: auth mints the tenant id; tenants takes over when deployed.
            if join_tenant_id is not None:
                return TenantMembership(tenant_id=join_tenant_id, role="member", tenant_name=None)
            return TenantMembership(tenant_id=new_id(), role=ROLE_OWNER, tenant_name=tenant_name)
        body: dict[str, Any] = {"user_id": str(user_id), "email": email}
        if tenant_name:
            body["tenant_name"] = tenant_name
        if invite_code:
            body["invite_code"] = invite_code
        if join_tenant_id is not None:
            # Auth vouches: the tenant's own identity provider signed this person in.
            body["tenant_id"] = str(join_tenant_id)
        try:
            response = await self.tenants.request("POST", "/tenants/internal/tenants", json=body)
        except (ServiceUnavailable, GatewayTimeout) as exc:
            raise TenantsUnavailable() from exc
        if 400 <= response.status_code < 500 and response.status_code not in (401, 403):
            raise _invite_problem(response.status_code, _json_or_empty(response))
        if response.status_code not in (200, 201):
            logger.warning("tenants_register_failed", status=response.status_code)
            raise TenantsUnavailable()
        answer = _json_or_empty(response)
        try:
            tenant_id = uuid.UUID(str(answer["tenant_id"]))
            role = str(answer["role"])
        except (KeyError, ValueError) as exc:
            logger.warning("tenants_register_bad_answer")
            raise TenantsUnavailable() from exc
        if role not in _ROLES:
            raise TenantsUnavailable()
        name = answer.get("tenant_name")
        return TenantMembership(
            tenant_id=tenant_id, role=role, tenant_name=name if isinstance(name, str) else None
        )

    async def login(self, *, email: str, password: str, client_ip: str) -> IssuedSession:
        """Check the credentials (throttled, see `login_throttle.py`) and open a session."""
        try:
            await self.throttle.admit(email=email, ip=client_ip)
        except TooManyLoginAttempts:
            LOGINS.labels("throttled").inc()
            raise
        async with self.database.transaction() as session:
            user = await repository.get_user_by_email(session, email=email)
            await self._refuse_passwords_where_sso_is_enforced(session, email=email, user=user)
        # Unknown emails are verified against a dummy hash: the same time, the same answer.
        valid = await verify_password(user.password_hash if user else None, password)
        if user is None or not valid:
            LOGINS.labels("failed").inc()
            raise InvalidCredentials()
        await self.throttle.succeeded(email=email, ip=client_ip)
        LOGINS.labels("succeeded").inc()
        async with self.database.transaction() as session:
            refresh_token, session_id = await self.sessions.start(session, user_id=user.id)
        return self.sessions.issue(user, refresh_token, session_id)

    async def _refuse_passwords_where_sso_is_enforced(
        self, session: AsyncSession, *, email: str, user: User | None
    ) -> None:
        """403 when the email's domain belongs to a tenant that requires its identity provider
        and this person is (or would become) one of its people. A member of another tenant
        who shares the domain keeps their password: one tenant cannot lock out another's."""
        provider = await sso_repository.provider_for_domain(session, domain=email_domain(email))
        if provider is None or not provider.enforce:
            return
        if user is None or user.tenant_id == provider.tenant_id:
            raise SsoRequired()

    async def sign_in(self, user: User) -> IssuedSession:
        """Open a session for a user someone else vouched for (an identity provider)."""
        async with self.database.transaction() as session:
            refresh_token, session_id = await self.sessions.start(session, user_id=user.id)
        LOGINS.labels("sso").inc()
        return self.sessions.issue(user, refresh_token, session_id)

    async def get_user(self, session: AsyncSession, *, user_id: uuid.UUID) -> User:
        """The user an access token names (401 when the account is gone)."""
        user = await repository.get_user(session, user_id=user_id)
        if user is None:
            raise UnknownUser()
        return user

    async def find_user(self, session: AsyncSession, *, user_id: uuid.UUID) -> User:
        """The user with this id (404 when there is none)."""
        user = await repository.get_user(session, user_id=user_id)
        if user is None:
            raise UserNotFound()
        return user


def _json_or_empty(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _invite_problem(status: int, problem: dict[str, Any]) -> InviteRejectedError:
    defaults = {
        404: "The invite code is not valid.",
        409: "The invite code has already been used.",
        410: "The invite code has expired.",
    }
    upstream_detail = problem.get("detail")
    detail = upstream_detail if isinstance(upstream_detail, str) and upstream_detail else None
    extra = {"errors": problem["errors"]} if isinstance(problem.get("errors"), list) else None
    return InviteRejectedError(
        status=status,
        detail=detail or defaults.get(status, "The tenants service refused the registration."),
        extra=extra,
    )
