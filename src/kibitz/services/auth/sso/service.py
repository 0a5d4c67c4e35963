"""Business rules of single sign-on: which providers an email may use, a sign-in from start to
callback, matching the person to an account, tenants' own providers, and the ways in."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from urllib.parse import urlsplit

import structlog
from prometheus_client import Counter
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.kit.address_guard import AllowList, UnsafeAddressError, check_base_url
from kibitz.kit.db import Database
from kibitz.kit.encryption import SecretCipher
from kibitz.kit.ids import new_id
from kibitz.kit.jwt import Principal
from kibitz.kit.passwords import hash_password, verify_password
from kibitz.kit.security import require_role
from kibitz.services.auth import repository as auth_repository
from kibitz.services.auth.config import AuthSettings
from kibitz.services.auth.errors import EmailTaken
from kibitz.services.auth.models import User
from kibitz.services.auth.service import (
    ROLE_OWNER,
    AuthService,
    check_password_policy,
    email_domain,
)
from kibitz.services.auth.sessions.service import IssuedSession
from kibitz.services.auth.sso import repository
from kibitz.services.auth.sso.errors import (
    ClientSecretRequired,
    CurrentPasswordWrong,
    DomainTaken,
    PasswordStillNeeded,
    PublicEmailDomain,
    SignInFailed,
    TenantProviderNotFound,
    UnsafeIssuer,
)
from kibitz.services.auth.sso.login_state import (
    LoginStateSeal,
    PendingSignIn,
    new_sign_in_request,
)
from kibitz.services.auth.sso.models import LinkedIdentity, TenantIdentityProvider
from kibitz.services.auth.sso.providers import (
    DiscoveryCache,
    ExternalIdentity,
    GithubProvider,
    IdentityProvider,
    OidcProvider,
)

logger = structlog.get_logger("kibitz.auth.sso")

SIGN_INS = Counter(
    "kibitz_auth_sso_sign_ins_total", "Single sign-on callbacks by outcome", ["kind", "outcome"]
)

TENANT_PROVIDER_SCOPES = "openid email profile"
# Mail services anyone can get an address at: claiming one would let a tenant take over (or lock
# out) strangers' sign-ins.
PUBLIC_EMAIL_DOMAINS = frozenset(
    {
        "aol.com",
        "fastmail.com",
        "gmail.com",
        "gmx.com",
        "gmx.de",
        "googlemail.com",
        "hotmail.com",
        "icloud.com",
        "live.com",
        "mail.com",
        "mail.ru",
        "me.com",
        "msn.com",
        "outlook.com",
        "proton.me",
        "protonmail.com",
        "qq.com",
        "web.de",
        "yahoo.com",
        "yandex.ru",
        "zoho.com",
    }
)


@dataclass(frozen=True)
class ProviderSummary:
    """A sign-in option as the login page shows it."""

    id: str
    name: str
    kind: str


@dataclass(frozen=True)
class TenantProviderView:
    """A tenant's provider as its owner sees it (never the secret)."""

    provider: TenantIdentityProvider
    domains: list[str]
    redirect_uri: str


@dataclass(frozen=True)
class IdentityView:
    """A linked identity, named after its provider."""

    identity: LinkedIdentity
    provider_name: str


def _state_hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


class SsoService:
    """Sign-in through identity providers, and the tenant's own provider."""

    def __init__(
        self,
        *,
        database: Database,
        auth: AuthService,
        settings: AuthSettings,
        cipher: SecretCipher,
        discovery: DiscoveryCache | None = None,
    ) -> None:
        self.database = database
        self.auth = auth
        self.public_url = settings.public_url.rstrip("/")
        self.discovery = discovery or DiscoveryCache()
        self.cipher = cipher
        self.seal = LoginStateSeal(cipher, max_age_seconds=settings.sso_login_seconds)
        self.tenant_guard = AllowList(
            [h.strip() for h in settings.sso_allowed_private_hosts.split(",") if h.strip()],
            setting="KIBITZ_AUTH_SSO_ALLOWED_PRIVATE_HOSTS",
        )
        self.deployment_providers: dict[str, IdentityProvider] = {}
        for setting in settings.sso_providers:
            secret = setting.client_secret.get_secret_value()
            provider: IdentityProvider
            if setting.kind == "github":
                provider = GithubProvider(
                    id=setting.id,
                    name=setting.name,
                    client_id=setting.client_id,
                    client_secret=secret,
                    scopes=setting.scopes or "read:user user:email",
                    github_url=setting.github_url,
                    api_url=setting.github_api_url,
                )
            else:
                provider = OidcProvider(
                    id=setting.id,
                    name=setting.name,
                    issuer=str(setting.issuer),
                    client_id=setting.client_id,
                    client_secret=secret,
                    scopes=setting.scopes or "openid email profile",
                    discovery=self.discovery,
                )
            self.deployment_providers[setting.id] = provider

    def callback_url(self, provider_id: str) -> str:
        """The redirect URI identity providers send the browser back to."""
        return f"{self.public_url}/auth/sso/{provider_id}/callback"

    # --- which providers ------------------------------------------------------------------

    async def providers_for(self, *, email: str | None) -> list[ProviderSummary]:
        """The deployment's providers, and the tenant's own first when the email's domain has
        one (with `enforce`, only the tenant's)."""
        options = [
            ProviderSummary(id=provider.id, name=provider.name, kind=provider.kind)
            for provider in self.deployment_providers.values()
        ]
        if not email or "@" not in email:
            return options
        async with self.database.transaction() as session:
            tenant_provider = await repository.provider_for_domain(
                session, domain=email_domain(email)
            )
        if tenant_provider is None:
            return options
        own = ProviderSummary(
            id=str(tenant_provider.id),
            name=self._tenant_provider_name(tenant_provider),
            kind="oidc",
        )
        return [own] if tenant_provider.enforce else [own, *options]

    @staticmethod
    def _tenant_provider_name(provider: TenantIdentityProvider) -> str:
        return f"your organisation ({urlsplit(provider.issuer).hostname or provider.issuer})"

    async def provider(self, provider_id: str) -> IdentityProvider:
        """A deployment provider by id, or a tenant's by its UUID."""
        deployment = self.deployment_providers.get(provider_id)
        if deployment is not None:
            return deployment
        try:
            tenant_provider_id = uuid.UUID(provider_id)
        except ValueError:
            raise SignInFailed("sso_unknown_provider", "no such provider") from None
        async with self.database.transaction() as session:
            record = await repository.get_tenant_provider_by_id(
                session, provider_id=tenant_provider_id
            )
            if record is None:
                raise SignInFailed("sso_unknown_provider", "no such tenant provider")
            domains = await repository.list_domains(session, provider_id=record.id)
        try:
            secret = self.cipher.decrypt(record.client_secret_encrypted)
        except ValueError:
            raise SignInFailed("sso_unavailable", "tenant client secret undecryptable") from None
        return OidcProvider(
            id=str(record.id),
            name=self._tenant_provider_name(record),
            issuer=record.issuer,
            client_id=record.client_id,
            client_secret=secret,
            scopes=TENANT_PROVIDER_SCOPES,
            discovery=self.discovery,
            tenant_id=record.tenant_id,
            domains=frozenset(domains),
            guard=self.tenant_guard,
        )

    # --- a sign-in ------------------------------------------------------------------------

    async def start_sign_in(
        self, *, provider_id: str, redirect: str, login_hint: str | None
    ) -> tuple[str, str]:
        """Where to send the browser, and the sealed cookie that binds the sign-in to it."""
        provider = await self.provider(provider_id)
        request = new_sign_in_request(self.callback_url(provider.id))
        url = await provider.authorization_url(request, login_hint=login_hint)
        cookie = self.seal.seal(
            PendingSignIn(provider_id=provider.id, request=request, redirect=redirect)
        )
        return url, cookie

    async def finish_sign_in(
        self,
        *,
        provider_id: str,
        cookie: str | None,
        code: str | None,
        state: str | None,
        error: str | None,
    ) -> tuple[IssuedSession, str]:
        """Check the callback against the browser's cookie, spend its state, redeem the code,
        and sign the person in (or up). Raises SignInFailed with the code /login shows."""
        pending = self.seal.open(cookie)
        if pending.provider_id != provider_id or not state:
            raise SignInFailed("sso_expired", "callback for another sign-in")
        if not _same_secret(state, pending.request.state):
            raise SignInFailed("sso_expired", "state does not match the cookie")
        await self._spend_state(state)
        if error:
            code_name = "sso_cancelled" if error == "access_denied" else "sso_failed"
            raise SignInFailed(code_name, f"provider answered error={error[:64]}")
        if not code:
            raise SignInFailed("sso_failed", "callback without a code")
        provider = await self.provider(provider_id)
        try:
            identity = await provider.identity(pending.request, code=code)
            session = await self._account_for(provider, identity)
        except SignInFailed as failure:
            SIGN_INS.labels(provider.kind, failure.code).inc()
            raise
        SIGN_INS.labels(provider.kind, "signed_in").inc()
        return session, pending.redirect

    async def _spend_state(self, state: str) -> None:
        now = datetime.now(UTC)
        try:
            async with self.database.transaction() as session:
                await repository.spend_state(
                    session,
                    state_hash=_state_hash(state),
                    expires_at=now + timedelta(seconds=self.seal.max_age_seconds),
                    now=now,
                )
        except IntegrityError:
            raise SignInFailed("sso_expired", "state used before (replay)") from None

    async def _account_for(
        self, provider: IdentityProvider, identity: ExternalIdentity
    ) -> IssuedSession:
        """The account this identity belongs to: linked before, or matched by verified email
        (never an unverified one), or new."""
        async with self.database.transaction() as session:
            linked = await repository.get_identity(
                session, provider_id=provider.id, subject=identity.subject
            )
            user = (
                await auth_repository.get_user(session, user_id=linked.user_id) if linked else None
            )
            if user is not None:
                await self._refuse_bypassing_the_tenant_provider(session, provider, user)
        if user is not None:
            return await self.auth.sign_in(user)
        if not identity.email or not identity.email_verified:
            raise SignInFailed("sso_unverified_email", "email missing or unverified")
        email = identity.email
        if provider.tenant_id is not None and email_domain(email) not in provider.domains:
            # A tenant's provider speaks for its own domains only, never for strangers.
            raise SignInFailed("sso_wrong_domain", "email outside the tenant's domains")
        link = LinkedIdentity(
            id=new_id(),
            user_id=uuid.UUID(int=0),
            provider_id=provider.id,
            subject=identity.subject,
            email=email,
            created_at=datetime.now(UTC),
        )
        async with self.database.transaction() as session:
            user = await auth_repository.get_user_by_email(session, email=email)
            if user is not None:
                if provider.tenant_id is not None and user.tenant_id != provider.tenant_id:
                    raise SignInFailed("sso_account_elsewhere", "account in another tenant")
                await self._refuse_bypassing_the_tenant_provider(session, provider, user)
                link.user_id = user.id
                try:
                    await repository.add_identity(session, link)
                except IntegrityError:
                    raise SignInFailed("sso_failed", "identity linked meanwhile") from None
            else:
                await self._refuse_bypassing_the_tenant_provider(session, provider, None, email)
        if user is not None:
            logger.info("sso_identity_linked", user_id=str(user.id), provider_id=provider.id)
            return await self.auth.sign_in(user)
        try:
            issued = await self.auth.create_account(
                email=email,
                password_hash=None,
                full_name=identity.name,
                join_tenant_id=provider.tenant_id,
                identity=link,
            )
        except EmailTaken:
            raise SignInFailed("sso_failed", "account created meanwhile") from None
        logger.info("sso_user_registered", user_id=str(issued.user.id), provider_id=provider.id)
        return issued

    async def _refuse_bypassing_the_tenant_provider(
        self,
        session: AsyncSession,
        provider: IdentityProvider,
        user: User | None,
        email: str | None = None,
    ) -> None:
        """With `enforce`, the tenant's people come in through the tenant's provider only."""
        domain = email_domain(user.email if user else email or "")
        required = await repository.provider_for_domain(session, domain=domain)
        if required is None or not required.enforce or str(required.id) == provider.id:
            return
        if user is None or user.tenant_id == required.tenant_id:
            raise SignInFailed("sso_required", "the tenant requires its own provider")

    # --- the tenant's own provider --------------------------------------------------------

    async def tenant_provider(
        self, session: AsyncSession, *, principal: Principal
    ) -> TenantProviderView:
        """The caller's tenant's provider (owner only; 404 when there is none)."""
        require_role(principal, ROLE_OWNER)
        provider = await repository.get_tenant_provider(session, tenant_id=principal.tenant_id)
        if provider is None:
            raise TenantProviderNotFound()
        return await self._view(session, provider)

    async def _view(
        self, session: AsyncSession, provider: TenantIdentityProvider
    ) -> TenantProviderView:
        return TenantProviderView(
            provider=provider,
            domains=await repository.list_domains(session, provider_id=provider.id),
            redirect_uri=self.callback_url(str(provider.id)),
        )

    async def configure_tenant_provider(
        self,
        session: AsyncSession,
        *,
        principal: Principal,
        issuer: str,
        client_id: str,
        client_secret: str | None,
        domains: list[str],
        enforce: bool,
    ) -> TenantProviderView:
        """Create or replace the tenant's provider (owner only). A domain another tenant has
        claimed is a 409; a public mail service's domain is never claimable."""
        require_role(principal, ROLE_OWNER)
        await self._check_issuer(issuer)
        for domain in domains:
            if domain in PUBLIC_EMAIL_DOMAINS:
                raise PublicEmailDomain(domain)
        taken = await repository.domains_owned_elsewhere(
            session, domains=domains, tenant_id=principal.tenant_id
        )
        if taken:
            raise DomainTaken(taken[0])
        now = datetime.now(UTC)
        provider = await repository.get_tenant_provider(session, tenant_id=principal.tenant_id)
        if provider is None:
            if client_secret is None:
                raise ClientSecretRequired()
            provider = TenantIdentityProvider(
                id=new_id(),
                tenant_id=principal.tenant_id,
                issuer=issuer,
                client_id=client_id,
                client_secret_encrypted=self.cipher.encrypt(client_secret),
                enforce=enforce,
                created_at=now,
                updated_at=now,
            )
            await repository.add_tenant_provider(session, provider)
        else:
            provider.issuer = issuer
            provider.client_id = client_id
            if client_secret is not None:
                provider.client_secret_encrypted = self.cipher.encrypt(client_secret)
            provider.enforce = enforce
            provider.updated_at = now
        try:
            await repository.replace_domains(session, provider=provider, domains=domains)
        except IntegrityError:
            # Claimed by another tenant between our check and our write.
            raise DomainTaken(domains[0] if len(domains) == 1 else "one of these domains") from None
        logger.info(
            "sso_tenant_provider_configured",
            tenant_id=str(principal.tenant_id),
            domains=len(domains),
            enforce=enforce,
        )
        return await self._view(session, provider)

    async def _check_issuer(self, issuer: str) -> None:
        """https (or an allow-listed private host), resolving to public addresses: a tenant
        must not make auth call into the private network."""
        parts = urlsplit(issuer)
        if parts.query or parts.fragment:
            raise UnsafeIssuer("must not carry a query or a fragment")
        try:
            pinned = await check_base_url(issuer, self.tenant_guard)
        except UnsafeAddressError as exc:
            raise UnsafeIssuer(str(exc)) from None
        if parts.scheme != "https" and not self.tenant_guard.allows(
            pinned.host, ip_address(pinned.ip)
        ):
            raise UnsafeIssuer("must be an https URL")

    async def remove_tenant_provider(self, session: AsyncSession, *, principal: Principal) -> None:
        """Remove the tenant's provider, its domains and enforcement (owner only)."""
        require_role(principal, ROLE_OWNER)
        if not await repository.delete_tenant_provider(session, tenant_id=principal.tenant_id):
            raise TenantProviderNotFound()

    # --- ways in --------------------------------------------------------------------------

    async def identities(self, session: AsyncSession, *, user_id: uuid.UUID) -> list[IdentityView]:
        """The user's linked identities, each with its provider's name."""
        views = []
        for identity in await repository.list_identities(session, user_id=user_id):
            deployment = self.deployment_providers.get(identity.provider_id)
            views.append(
                IdentityView(
                    identity=identity,
                    provider_name=deployment.name if deployment else "your organisation",
                )
            )
        return views

    async def set_password(
        self, *, user_id: uuid.UUID, password: str, current_password: str | None
    ) -> None:
        """Add a password, or change it (the current one is then required)."""
        async with self.database.transaction() as session:
            user = await self.auth.get_user(session, user_id=user_id)
        check_password_policy(password, email=user.email)
        if user.password_hash is not None and not await verify_password(
            user.password_hash, current_password or ""
        ):
            raise CurrentPasswordWrong()
        password_hash = await hash_password(password)
        async with self.database.transaction() as session:
            await repository.set_password_hash(
                session, user_id=user_id, password_hash=password_hash
            )

    async def remove_password(self, session: AsyncSession, *, user_id: uuid.UUID) -> None:
        """Remove the password while a linked identity remains a way in (409 otherwise)."""
        await self.auth.get_user(session, user_id=user_id)
        if await repository.count_identities(session, user_id=user_id) == 0:
            raise PasswordStillNeeded()
        await repository.set_password_hash(session, user_id=user_id, password_hash=None)


def _same_secret(left: str, right: str) -> bool:
    return hmac.compare_digest(left.encode(), right.encode())
