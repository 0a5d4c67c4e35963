"""Domain errors of the users service, each with its status and problem type."""

from __future__ import annotations

from kibitz.kit.errors import NotFound, ServiceUnavailable


class ProfileNotFound(NotFound):
    problem_type = "profile-not-found"

    def __init__(self) -> None:
        super().__init__("No account exists for this token's user.")


class AuthUnavailable(ServiceUnavailable):
    problem_type = "auth-unavailable"

    def __init__(self) -> None:
        super().__init__("The profile cannot be created right now; try again shortly.")
