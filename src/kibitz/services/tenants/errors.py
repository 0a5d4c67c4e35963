"""Domain errors of the tenants service, each with its status and problem type."""

from __future__ import annotations

from kibitz.kit.errors import Conflict, Forbidden, NotFound, ProblemError, TooManyRequests


class TenantNotFound(NotFound):
    problem_type = "tenant-not-found"

    def __init__(self) -> None:
        super().__init__("No such tenant.")


class RoleRequired(Forbidden):
    problem_type = "role-required"

    def __init__(self, *roles: str) -> None:
        super().__init__(f"This action needs the {' or '.join(roles)} role.")


class UnknownPlanError(ProblemError):
    status, problem_type, title = 422, "unknown-plan", "Unprocessable Content"

    def __init__(self, plan: str, known: list[str]) -> None:
        super().__init__(
            f"There is no plan {plan!r}.",
            extra={"errors": [{"field": "plan", "message": f"must be one of {', '.join(known)}"}]},
        )


class DowngradeRefused(Conflict):
    problem_type = "downgrade-refused"

    def __init__(self, plan: str, exceeded: list[dict[str, object]]) -> None:
        names = ", ".join(str(item["limit"]) for item in exceeded)
        super().__init__(
            f"The {plan} plan is too small for this tenant's current usage ({names}).",
            extra={"plan": plan, "exceeded": exceeded},
        )


class InviteNotFound(NotFound):
    problem_type = "invite-not-found"

    def __init__(self) -> None:
        super().__init__("The invite code is not valid.")


class InviteUsed(Conflict):
    problem_type = "invite-used"

    def __init__(self) -> None:
        super().__init__("The invite code has already been used.")


class InviteExpiredError(ProblemError):
    status, problem_type, title = 410, "invite-expired", "Gone"

    def __init__(self) -> None:
        super().__init__("The invite code has expired.")


class MemberNotFound(NotFound):
    problem_type = "member-not-found"

    def __init__(self) -> None:
        super().__init__("No such member in this tenant.")


class CannotRemoveYourself(Conflict):
    problem_type = "cannot-remove-yourself"

    def __init__(self) -> None:
        super().__init__("You cannot remove yourself; to leave, delete your account in settings.")


class LastOwner(Conflict):
    problem_type = "last-owner"

    def __init__(self) -> None:
        super().__init__(
            "You are the only owner of a tenant that has other members: remove them first "
            "(Settings, Members), then delete your account."
        )


class AlreadyMember(Conflict):
    problem_type = "already-member"

    def __init__(self) -> None:
        super().__init__("This user already belongs to another tenant.")


class QuotaExceeded(TooManyRequests):
    problem_type = "quota-exceeded"

    def __init__(
        self,
        *,
        limit_name: str,
        limit: int,
        used: int,
        plan: str,
        upgrade_to: str | None,
        retry_after: int,
    ) -> None:
        super().__init__(
            f"The {plan} plan allows {limit} {limit_name.replace('_', ' ')}; {used} are used.",
            retry_after=retry_after,
            extra={
                "limit": limit_name,
                "limit_value": limit,
                "used": used,
                "plan": plan,
                "upgrade_to": upgrade_to,
            },
        )


class BillingRequired(Conflict):
    problem_type = "billing-required"

    def __init__(self, plan: str, *, current: str) -> None:
        super().__init__(
            f"Paid plans start and end through billing: buy {plan} with a checkout "
            "(POST /billing/checkout), or change or cancel a paid plan in the billing portal "
            "(POST /billing/portal).",
            extra={
                "plan": plan,
                "current_plan": current,
                "checkout": "/billing/checkout",
                "portal": "/billing/portal",
            },
        )
