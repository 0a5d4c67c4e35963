"""Domain errors of the users service, each with its status and problem type."""

from __future__ import annotations

import uuid

from kibitz.kit.errors import NotFound, ServiceUnavailable, Unprocessable


class ProfileNotFound(NotFound):
    problem_type = "profile-not-found"

    def __init__(self) -> None:
        super().__init__("No account exists for this token's user.")


class AuthUnavailable(ServiceUnavailable):
    problem_type = "auth-unavailable"

    def __init__(self) -> None:
        super().__init__("The profile cannot be created right now; try again shortly.")


class UnknownAgents(Unprocessable):
    problem_type = "unknown-agent"

    def __init__(self, field: str, agent_ids: list[uuid.UUID]) -> None:
        listed = ", ".join(str(agent_id) for agent_id in agent_ids)
        message = f"not one of your agents: {listed}"
        super().__init__(
            f"preferences.{field}: {message}",
            extra={"errors": [{"field": f"preferences.{field}", "message": message}]},
        )


class AgentsUnavailable(ServiceUnavailable):
    problem_type = "agents-unavailable"

    def __init__(self) -> None:
        super().__init__("Your agents cannot be checked right now; try again shortly.")
