"""Domain errors of ending an account, each with its status and problem type."""

from __future__ import annotations

from kibitz.kit.errors import Conflict, Forbidden


class PasswordNotConfirmed(Forbidden):
    # 403, not 401: the web client answers a 401 by renewing the session and asking again.
    problem_type = "password-not-confirmed"

    def __init__(self) -> None:
        super().__init__("The password is not correct.")


class RecentSignInRequired(Forbidden):
    problem_type = "recent-sign-in-required"

    def __init__(self) -> None:
        super().__init__(
            "Deleting an account without a password needs a recent sign-in: sign out, sign in "
            "again and delete it within 10 minutes."
        )


class AccountNeedsPerson(Forbidden):
    problem_type = "api-key-needs-session"

    def __init__(self) -> None:
        super().__init__("An account is deleted by its signed-in person, not with an API key.")


class LastOwner(Conflict):
    problem_type = "last-owner"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(
            detail
            or "You are the only owner of a tenant that has other members: remove them first "
            "(Settings, Members), then delete your account."
        )
