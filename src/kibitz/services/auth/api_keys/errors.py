"""Domain errors of API keys, each with its status and problem type."""

from __future__ import annotations

from kibitz.kit.errors import Conflict, Forbidden, NotFound, Unauthorized, Unprocessable


class ApiKeyNotFound(NotFound):
    problem_type, title = "api-key-not-found", "API Key Not Found"

    def __init__(self) -> None:
        super().__init__("No such API key.")


class InvalidApiKey(Unauthorized):
    # One answer for unknown, revoked and expired keys: nothing to probe.
    problem_type = "invalid-api-key"

    def __init__(self) -> None:
        super().__init__("The API key is invalid, expired or revoked.")


class ApiKeyNeedsSession(Forbidden):
    problem_type = "api-key-needs-session"

    def __init__(self) -> None:
        super().__init__("API keys are created by a signed-in person, not with another API key.")


class TooManyApiKeys(Conflict):
    problem_type = "too-many-api-keys"

    def __init__(self, limit: int) -> None:
        super().__init__(f"At most {limit} API keys may be active at once; revoke one first.")


class ExpiryInThePast(Unprocessable):
    def __init__(self) -> None:
        message = "must be in the future"
        super().__init__(
            f"expires_at: {message}",
            extra={"errors": [{"field": "expires_at", "message": message}]},
        )
