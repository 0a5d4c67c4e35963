"""Domain errors of the auth service, each with its status and problem type."""

from __future__ import annotations

from typing import Any

from kibitz.kit.errors import (
    Conflict,
    NotFound,
    ProblemError,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    Unprocessable,
)


class EmailTaken(Conflict):
    problem_type = "email-taken"

    def __init__(self) -> None:
        super().__init__("An account with this email already exists.")


class InvalidCredentials(Unauthorized):
    # One answer for an unknown email and a wrong password: nothing to enumerate.
    problem_type = "invalid-credentials"

    def __init__(self) -> None:
        super().__init__("Incorrect email or password.")


class InvalidRefreshToken(Unauthorized):
    problem_type = "invalid-refresh-token"

    def __init__(self, detail: str = "The refresh token is invalid, expired or revoked.") -> None:
        super().__init__(detail)


class UnknownUser(Unauthorized):
    problem_type = "unknown-user"

    def __init__(self) -> None:
        super().__init__("The account of this access token no longer exists.")


class UserNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("No user has this id.")


class TooManyLoginAttempts(TooManyRequests):
    problem_type = "too-many-login-attempts"

    def __init__(self, *, retry_after: int) -> None:
        super().__init__(
            "Too many failed login attempts; try again later.", retry_after=retry_after
        )


class WeakPassword(Unprocessable):
    problem_type = "weak-password"

    def __init__(self, message: str) -> None:
        super().__init__(message, extra={"errors": [{"field": "password", "message": message}]})


class MissingRefreshToken(Unprocessable):
    def __init__(self) -> None:
        message = "Field required (in the JSON body or the kibitz_refresh cookie)"
        super().__init__(
            f"refresh_token: {message}",
            extra={"errors": [{"field": "refresh_token", "message": message}]},
        )


class InvitesNeedTenants(ServiceUnavailable):
    def __init__(self) -> None:
        super().__init__("Invites need the tenants service, which this deployment does not run.")


class TenantsUnavailable(ServiceUnavailable):
    def __init__(self) -> None:
        super().__init__("The tenants service is unavailable; try registering again shortly.")


class InviteRejectedError(ProblemError):
    """The tenants service refused the invite (unknown, used or expired) or the tenant fields."""

    problem_type = "invalid-invite"
    title = "Invite Rejected"

    def __init__(self, *, status: int, detail: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail, status=status, extra=extra)
