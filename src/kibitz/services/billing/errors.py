"""Domain errors of the billing service, each with its status and problem type."""

from __future__ import annotations

from kibitz.kit.errors import (
    BadGateway,
    BadRequest,
    Conflict,
    Forbidden,
    ProblemError,
    ServiceUnavailable,
)


class BillingDisabled(Conflict):
    problem_type = "billing-disabled"

    def __init__(self) -> None:
        super().__init__("Billing is not enabled in this deployment.")


class RoleRequired(Forbidden):
    problem_type = "role-required"

    def __init__(self, *roles: str) -> None:
        super().__init__(f"This action needs the {' or '.join(roles)} role.")


class UnknownPaidPlan(ProblemError):
    status, problem_type, title = 422, "unknown-plan", "Unprocessable Content"

    def __init__(self, plan: str, known: list[str]) -> None:
        super().__init__(
            f"There is no paid plan {plan!r}.",
            extra={"errors": [{"field": "plan", "message": f"must be one of {', '.join(known)}"}]},
        )


class NoCustomerYet(Conflict):
    problem_type = "no-billing-account"

    def __init__(self) -> None:
        super().__init__("This tenant has not subscribed through billing yet: start a checkout.")


class InvalidSignature(BadRequest):
    problem_type = "invalid-signature"

    def __init__(self) -> None:
        super().__init__("The Stripe-Signature header does not verify (or is too old).")


class InvalidEvent(BadRequest):
    problem_type = "invalid-event"

    def __init__(self) -> None:
        super().__init__("The webhook body is not a Stripe event.")


class StripeUnavailable(ServiceUnavailable):
    problem_type = "stripe-unavailable"

    def __init__(self) -> None:
        super().__init__("Stripe cannot be reached right now; try again shortly.", retry_after=10)


class StripeRefused(BadGateway):
    problem_type = "stripe-refused"

    def __init__(self) -> None:
        # Stripe's own message may name ids or settings: it goes to the log, not the caller.
        super().__init__("Stripe refused the request; the operator can see why in the logs.")


class AlreadySubscribed(Conflict):
    problem_type = "already-subscribed"

    def __init__(self, plan: str) -> None:
        super().__init__(
            f"This tenant already pays for the {plan} plan: change or cancel it in the billing "
            "portal (POST /billing/portal).",
            extra={"plan": plan, "portal": "/billing/portal"},
        )
