"""Business rules of the auth service: accounts, token pairs, signing keys.

Register, login, refresh and logout open their own short transactions instead of one per
request: argon2 takes tens of milliseconds and the tenants call is a network round trip, and
neither may run while a transaction holds SQLite's write lock.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
from kibitz.kit.jwt import ACCESS_TOKEN_SECONDS, SigningKey
from kibitz.kit.passwords import hash_password, verify_password
from kibitz.kit.session_revocations import SessionRevoked
from kibitz.services.auth import repository
from kibitz.services.auth.errors import (
    EmailTaken,
    InvalidCredentials,
    InvalidRefreshToken,
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
from kibitz.services.auth.models import (
    RefreshToken,
    RefreshTokenFamily,
    SessionRevocation,
    SigningKeyRecord,
    User,
)
from kibitz.services.auth.schemas import as_utc
from kibitz.services.auth.sso import repository as sso_repository
from kibitz.services.auth.sso.errors import SsoRequired
from kibitz.services.auth.sso.models import LinkedIdentity

logger = structlog.get_logger("kibitz.auth")

LOGINS = Counter("kibitz_auth_logins_total", "Login attempts by outcome", ["outcome"])
REFRESH_REUSES = Counter(
    "kibitz_auth_refresh_token_reuses_total", "Spent refresh tokens presented again"
)

ROLE_OWNER = "owner"
# 10 s: keys change only on rotation; a replica's new key shows up in JWKS this soon.
_JWKS_CACHE_SECONDS = 10.0
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


# --- signing keys ---------------------------------------------------------------------------


# 60 s: how often each auth replica rereads which key signs.
KEY_RELOAD_SECONDS = 60.0
# A new key is published this long before it signs, so every JWKS that verifiers fetch
# (auth caches its own for 10 s) already holds it when the first token it signed arrives.
PUBLISH_AHEAD = timedelta(seconds=30)
# A rotated-out key stays published until every token it may have signed has expired: replicas
# sign with it until they reload after the new key's publish-ahead, and a token lives 15 min;
# 2 min more for clock skew.
ROTATED_KEY_GRACE = PUBLISH_AHEAD + timedelta(
    seconds=KEY_RELOAD_SECONDS + ACCESS_TOKEN_SECONDS + 120
)


@dataclass(frozen=True)
class RotatedKeys:
    """The outcome of a rotation: the new key, when it starts signing, until when the old ones
    verify."""

    kid: str
    signs_from: datetime
    verifying_until: dict[str, datetime]


def _signing_record(records: list[SigningKeyRecord], now: datetime) -> SigningKeyRecord:
    """The newest active key published at least PUBLISH_AHEAD ago; while none is, the oldest
    active one (replicas racing on a first start each store a key: all pick the same)."""
    active = [record for record in records if record.active]
    published = [record for record in active if as_utc(record.created_at) <= now - PUBLISH_AHEAD]
    return published[-1] if published else active[0]


class KeyRing:
    """The signing keys in the auth database: one signs (see `_signing_record`), every key not
    retired verifies."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._signing: SigningKey | None = None
        self._jwks: dict[str, Any] | None = None
        self._jwks_loaded_at = 0.0

    @property
    def signing_key(self) -> SigningKey:
        """The key new access tokens are signed with."""
        if self._signing is None:
            raise RuntimeError("signing keys are not loaded yet")
        return self._signing

    async def load(self, *, now: datetime | None = None) -> None:
        """Load the signing key, generating and storing one on the very first start."""
        async with self._database.transaction() as session:
            records = await repository.list_published_signing_keys(
                session, now=now or datetime.now(UTC)
            )
            if not any(record.active for record in records):
                key = SigningKey.generate()
                await repository.add_signing_key(
                    session,
                    SigningKeyRecord(
                        kid=key.kid,
                        private_pem=key.to_pem().decode(),
                        created_at=datetime.now(UTC),
                        active=True,
                    ),
                )
                logger.info("signing_key_generated", kid=key.kid)
        # Read again after commit: replicas racing on a first start see every stored key.
        now = now or datetime.now(UTC)
        async with self._database.transaction() as session:
            records = await repository.list_published_signing_keys(session, now=now)
        signing = _signing_record(records, now)
        if self._signing is None or self._signing.kid != signing.kid:
            self._signing = SigningKey.from_pem(signing.private_pem.encode(), signing.kid)
            self._jwks = None

    async def keep_current(self) -> None:
        """Reread which key signs every minute, so a rotation reaches every replica (run as a
        task for the app's life)."""
        while True:
            await asyncio.sleep(KEY_RELOAD_SECONDS)
            try:
                await self.load()
            except Exception as error:  # the database may be away a while: sign on meanwhile
                logger.warning("signing_key_reload_failed", error=type(error).__name__)

    async def rotate(self, *, now: datetime | None = None) -> RotatedKeys:
        """Store a new key that signs once published long enough (PUBLISH_AHEAD), and retire
        the others when every token they may still sign has expired."""
        now = now or datetime.now(UTC)
        key = SigningKey.generate()
        retire_at = now + ROTATED_KEY_GRACE
        async with self._database.transaction() as session:
            records = await repository.list_published_signing_keys(session, now=now)
            old = [record.kid for record in records]
            await repository.retire_signing_keys(session, old, at=retire_at)
            await repository.add_signing_key(
                session,
                SigningKeyRecord(
                    kid=key.kid, private_pem=key.to_pem().decode(), created_at=now, active=True
                ),
            )
        logger.info("signing_key_rotated", kid=key.kid, retiring=old)
        return RotatedKeys(
            kid=key.kid,
            signs_from=now + PUBLISH_AHEAD,
            verifying_until=dict.fromkeys(old, retire_at),
        )

    async def jwks(self) -> dict[str, Any]:
        """Every published (not retired) public key, as a JWKS document."""
        if self._jwks and time.monotonic() - self._jwks_loaded_at < _JWKS_CACHE_SECONDS:
            return self._jwks
        async with self._database.transaction() as session:
            records = await repository.list_published_signing_keys(session, now=datetime.now(UTC))
        self._jwks = {
            "keys": [
                SigningKey.from_pem(record.private_pem.encode(), record.kid).public_jwk()
                for record in records
            ]
        }
        self._jwks_loaded_at = time.monotonic()
        return self._jwks


# --- accounts and tokens --------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedSession:
    """A user with a fresh access token and refresh token."""

    user: User
    access_token: str
    refresh_token: str
    expires_in: int = ACCESS_TOKEN_SECONDS


@dataclass(frozen=True)
class TenantMembership:
    """The tenant a new user belongs to and their role in it."""

    tenant_id: uuid.UUID
    role: str
    tenant_name: str | None


def email_domain(email: str) -> str:
    """The lower-case domain of a (normalised) email address."""
    return email.rsplit("@", 1)[-1].strip().lower()


def hash_refresh_token(token: str) -> str:
    """SHA-256 of a refresh token: enough for 256 random bits, and a constant-cost lookup."""
    return hashlib.sha256(token.encode()).hexdigest()


class AuthService:
    """Accounts and sessions: register, login, refresh with rotation, logout."""

    def __init__(
        self,
        *,
        database: Database,
        keys: KeyRing,
        outbox: Outbox,
        throttle: LoginThrottle,
        refresh_token_seconds: int,
        tenants: ServiceClient | None,
    ) -> None:
        self.database = database
        self.keys = keys
        self.outbox = outbox
        self.throttle = throttle
        self.refresh_token_seconds = refresh_token_seconds
        self.tenants = tenants

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
                refresh_token, session_id = await self._start_family(session, user_id=user.id)
        except Exception:
            # Another registration took the email meanwhile (or the write failed): the tenant
            # made for this account, or the invite it used, must not stay behind.
            await self._undo_join(user_id)
            raise
        logger.info("user_registered", user_id=str(user.id), tenant_id=str(user.tenant_id))
        return self._issue(user, refresh_token, session_id)

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
            refresh_token, session_id = await self._start_family(session, user_id=user.id)
        return self._issue(user, refresh_token, session_id)

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
            refresh_token, session_id = await self._start_family(session, user_id=user.id)
        LOGINS.labels("sso").inc()
        return self._issue(user, refresh_token, session_id)

    async def refresh(self, *, refresh_token: str) -> IssuedSession:
        """Spend the refresh token for a new pair; reusing a spent one revokes its family."""
        now = datetime.now(UTC)
        user: User | None = None
        async with self.database.transaction() as session:
            found = await repository.get_refresh_token(
                session, token_hash=hash_refresh_token(refresh_token)
            )
            if found is None:
                raise InvalidRefreshToken()
            token, family = found
            if family.revoked_at is not None:
                raise InvalidRefreshToken()
            if token.spent_at is None and as_utc(token.expires_at) <= now:
                raise InvalidRefreshToken()
            if token.spent_at is None and await repository.spend_refresh_token(
                session, token_id=token.id, now=now
            ):
                user = await repository.get_user(session, user_id=family.user_id)
                if user is None:
                    raise InvalidRefreshToken()
                new_token = await self._add_token(session, family_id=family.id, now=now)
            else:
                # A spent token came back: it leaked. End the whole session, newest token too,
                # and its access tokens in every service.
                await repository.revoke_refresh_token_family(
                    session, family_id=family.id, now=now, reason="reuse"
                )
                await self._revoke_session(session, family=family, now=now)
        # Raised after the block so the revocation commits.
        if user is None:
            logger.warning("refresh_token_reused", family_id=str(family.id))
            REFRESH_REUSES.inc()
            raise InvalidRefreshToken()
        return self._issue(user, new_token, family.id)

    async def logout(self, *, refresh_token: str) -> None:
        """Revoke the refresh token's family; unknown tokens are ignored (logout is idempotent)."""
        async with self.database.transaction() as session:
            found = await repository.get_refresh_token(
                session, token_hash=hash_refresh_token(refresh_token)
            )
            if found is not None:
                now = datetime.now(UTC)
                await repository.revoke_refresh_token_family(
                    session, family_id=found[1].id, now=now, reason="logout"
                )
                await self._revoke_session(session, family=found[1], now=now)

    async def revoke_all_sessions_of_user(
        self, session: AsyncSession, *, user_id: uuid.UUID, reason: str
    ) -> int:
        """End every session of the user: their refresh tokens stop at once, their access
        tokens in every service (stored and published, in this transaction)."""
        now = datetime.now(UTC)
        families = await repository.list_live_families(session, user_id=user_id)
        for family in families:
            await repository.revoke_refresh_token_family(
                session, family_id=family.id, now=now, reason=reason
            )
            await self._revoke_session(session, family=family, now=now)
        return len(families)

    async def _revoke_session(
        self, session: AsyncSession, *, family: RefreshTokenFamily, now: datetime
    ) -> None:
        """Refuse the session's access tokens everywhere until they expire: stored (for
        processes that ask) and published (for those that listen), in this transaction."""
        # The access tokens of the session were issued by now at the latest; 2 min of skew.
        expires_at = now + timedelta(seconds=ACCESS_TOKEN_SECONDS + 120)
        await repository.add_session_revocation(
            session,
            SessionRevocation(
                session_id=family.id, user_id=family.user_id, revoked_at=now, expires_at=expires_at
            ),
        )
        await self.outbox.add(
            session,
            SessionRevoked(session_id=family.id, user_id=family.user_id, expires_at=expires_at),
        )

    async def session_revocations(
        self, session: AsyncSession, *, since: datetime | None
    ) -> tuple[datetime, list[SessionRevocation]]:
        """The revocations whose tokens may still be live, newer than `since`; and now."""
        now = datetime.now(UTC)
        return now, await repository.list_session_revocations(session, now=now, since=since)

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

    async def _start_family(
        self, session: AsyncSession, *, user_id: uuid.UUID
    ) -> tuple[str, uuid.UUID]:
        """A new session: its first refresh token and its id (the access tokens' `sid`)."""
        now = datetime.now(UTC)
        family = RefreshTokenFamily(id=new_id(), user_id=user_id, created_at=now)
        await repository.add_refresh_token_family(session, family)
        return await self._add_token(session, family_id=family.id, now=now), family.id

    async def _add_token(
        self, session: AsyncSession, *, family_id: uuid.UUID, now: datetime
    ) -> str:
        token = secrets.token_urlsafe(32)
        await repository.add_refresh_token(
            session,
            RefreshToken(
                id=new_id(),
                family_id=family_id,
                token_hash=hash_refresh_token(token),
                created_at=now,
                expires_at=now + timedelta(seconds=self.refresh_token_seconds),
            ),
        )
        return token

    def _issue(self, user: User, refresh_token: str, session_id: uuid.UUID) -> IssuedSession:
        access_token = self.keys.signing_key.issue_access_token(
            user_id=user.id, tenant_id=user.tenant_id, role=user.role, session_id=session_id
        )
        return IssuedSession(user=user, access_token=access_token, refresh_token=refresh_token)


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
