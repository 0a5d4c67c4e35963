"""Errors of single sign-on: problems of the JSON routes, and a failed browser sign-in."""

from __future__ import annotations

from kibitz.kit.errors import Conflict, Forbidden, NotFound, Unprocessable

# What /login shows for each `?error=` code (the web app has the same words).
SIGN_IN_MESSAGES = {
    "sso_failed": "Signing in with your identity provider did not work. Please try again.",
    "sso_cancelled": "Signing in was cancelled at your identity provider.",
    "sso_expired": "That sign-in took too long or was already used. Please start again.",
    "sso_unavailable": "Your identity provider cannot be reached right now. Try again shortly.",
    "sso_unverified_email": (
        "Your identity provider has not verified your email address, so it cannot sign you in."
    ),
    "sso_account_elsewhere": (
        "An account with this email belongs to another organisation. Sign in with its password."
    ),
    "sso_wrong_domain": "This identity provider cannot sign in people with your email domain.",
    "sso_required": "Your organisation requires signing in through its identity provider.",
    "sso_unknown_provider": "This sign-in option does not exist (any more).",
}


class SignInFailed(Exception):
    """A browser sign-in ends on `/login?error=<code>`; `reason` is for the log only."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code if code in SIGN_IN_MESSAGES else "sso_failed"
        self.reason = reason


class SsoRequired(Forbidden):
    problem_type = "sso-required"

    def __init__(self, provider_name: str = "your organisation's identity provider") -> None:
        super().__init__(
            f"This email's organisation requires single sign-on: continue with {provider_name}."
        )


class DomainTaken(Conflict):
    problem_type = "sso-domain-taken"

    def __init__(self, domain: str) -> None:
        super().__init__(f"The domain {domain} already belongs to another organisation.")


class PublicEmailDomain(Unprocessable):
    problem_type = "sso-public-domain"

    def __init__(self, domain: str) -> None:
        message = f"{domain} is a public email service; no organisation can claim it."
        super().__init__(message, extra={"errors": [{"field": "domains", "message": message}]})


class TenantProviderNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Your organisation has no identity provider configured.")


class ClientSecretRequired(Unprocessable):
    def __init__(self) -> None:
        message = "Field required when the organisation has no identity provider yet"
        super().__init__(
            f"client_secret: {message}",
            extra={"errors": [{"field": "client_secret", "message": message}]},
        )


class UnsafeIssuer(Unprocessable):
    problem_type = "sso-unsafe-issuer"

    def __init__(self, reason: str) -> None:
        message = f"The issuer {reason}."
        super().__init__(message, extra={"errors": [{"field": "issuer", "message": message}]})


class PasswordStillNeeded(Conflict):
    problem_type = "last-way-in"

    def __init__(self) -> None:
        super().__init__(
            "The password is your only way in; link an identity provider before removing it."
        )


class CurrentPasswordWrong(Forbidden):
    problem_type = "invalid-credentials"

    def __init__(self) -> None:
        super().__init__("The current password is not correct.")
