"""A sign-in in progress, sealed into a short-lived cookie of the browser that started it.

The cookie binds `state`, `nonce` and the PKCE verifier to that browser (a callback arriving in
another browser has no cookie, or the wrong one); Fernet encrypts it (the verifier stays secret)
and authenticates it (nothing in it can be changed), and its timestamp ends it after a few
minutes. Single use is the spent-state table's job (`SsoService.finish_sign_in`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlsplit

from authlib.common.security import generate_token

from kibitz.kit.encryption import SecretCipher
from kibitz.services.auth.sso.errors import SignInFailed
from kibitz.services.auth.sso.providers import SignInRequest

COOKIE_NAME = "kibitz_sso"
# Only the sign-in routes see it.
COOKIE_PATH = "/auth/sso"
MAX_REDIRECT_LENGTH = 512
DEFAULT_REDIRECT = "/dashboard"


@dataclass(frozen=True)
class PendingSignIn:
    """A sign-in between its start and its callback."""

    provider_id: str
    request: SignInRequest
    # Where the web app goes once signed in: a path of the web app (see `web_app_path`).
    redirect: str


def new_sign_in_request(redirect_uri: str) -> SignInRequest:
    """Fresh random `state`, `nonce` and PKCE verifier (256+ bits each)."""
    return SignInRequest(
        redirect_uri=redirect_uri,
        state=generate_token(43),
        nonce=generate_token(43),
        # RFC 7636 4.1: 43-128 characters of the unreserved set.
        code_verifier=generate_token(64),
    )


def web_app_path(value: str | None) -> str | None:
    """`value` when it is a path of this web app (so never an open redirect), else None."""
    if not value:
        return DEFAULT_REDIRECT
    if len(value) > MAX_REDIRECT_LENGTH or not value.isprintable() or "\\" in value:
        return None
    # "//evil.example" and "/\\evil" are other hosts to a browser; a scheme is another site.
    if not value.startswith("/") or value.startswith("//"):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    return value


class LoginStateSeal:
    """Seals and opens the sign-in cookie."""

    def __init__(self, cipher: SecretCipher, *, max_age_seconds: int) -> None:
        self._cipher = cipher
        self.max_age_seconds = max_age_seconds

    def seal(self, pending: PendingSignIn) -> str:
        """The cookie value for a sign-in."""
        request = pending.request
        return self._cipher.encrypt(
            json.dumps(
                {
                    "p": pending.provider_id,
                    "u": request.redirect_uri,
                    "s": request.state,
                    "n": request.nonce,
                    "v": request.code_verifier,
                    "r": pending.redirect,
                }
            )
        )

    def open(self, value: str | None) -> PendingSignIn:
        """The sign-in in the cookie; `sso_expired` when it is missing, forged or too old."""
        if not value or len(value) > 4096:
            raise SignInFailed("sso_expired", "no sign-in cookie")
        try:
            data = json.loads(self._cipher.decrypt(value, max_age_seconds=self.max_age_seconds))
            return PendingSignIn(
                provider_id=str(data["p"]),
                request=SignInRequest(
                    redirect_uri=str(data["u"]),
                    state=str(data["s"]),
                    nonce=str(data["n"]),
                    code_verifier=str(data["v"]),
                ),
                redirect=web_app_path(str(data["r"])) or DEFAULT_REDIRECT,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise SignInFailed("sso_expired", "sign-in cookie forged or expired") from exc
