"""Kibitz's calls to Stripe, through the official SDK (async, over httpx), and webhook checks.

Stripe's errors become billing's problems here: a network failure is a 503 the client may retry,
anything Stripe refuses is a 502 whose reason goes to the log only.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

import stripe
import structlog

from kibitz.services.billing.errors import (
    InvalidEvent,
    InvalidSignature,
    StripeRefused,
    StripeUnavailable,
)

logger = structlog.get_logger("kibitz.billing.stripe")

T = TypeVar("T")
# 2: the SDK retries connection errors and 409/429/5xx with backoff, reusing its idempotency key.
_NETWORK_RETRIES = 2


class StripeApi:
    """The Stripe endpoints billing uses, and verification of Stripe's webhook signatures."""

    def __init__(
        self,
        *,
        secret_key: str,
        webhook_secret: str,
        api_base: str | None,
        timeout_seconds: float,
        webhook_tolerance_seconds: int,
    ) -> None:
        self._http = stripe.HTTPXClient(timeout=timeout_seconds)
        base_addresses: Any = {"api": api_base} if api_base else {}
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses=base_addresses,
            http_client=self._http,
            max_network_retries=_NETWORK_RETRIES,
        )
        self._webhook_secret = webhook_secret
        self._tolerance = webhook_tolerance_seconds

    def verify_event(self, payload: bytes, signature: str | None) -> stripe.Event:
        """The event in a webhook body, once its signature and age check out (else a 400)."""
        try:
            return self._client.construct_event(
                payload, signature, self._webhook_secret, tolerance=self._tolerance
            )
        except stripe.SignatureVerificationError as exc:
            raise InvalidSignature() from exc
        except ValueError as exc:  # not JSON, or not an event
            raise InvalidEvent() from exc

    async def create_customer(
        self, *, tenant_id: str, email: str | None, idempotency_key: str
    ) -> str:
        """A new Stripe customer for the tenant; its id."""
        params: dict[str, Any] = {"metadata": {"tenant_id": tenant_id}}
        if email:
            params["email"] = email
        customer = await _call(
            self._client.v1.customers.create_async(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            )
        )
        return str(customer.id)

    async def create_checkout_session(
        self,
        *,
        customer_id: str,
        price_id: str,
        tenant_id: str,
        plan: str,
        success_url: str,
        cancel_url: str,
        idempotency_key: str,
    ) -> str:
        """A Checkout session in subscription mode for one price; its URL."""
        metadata = {"tenant_id": tenant_id, "plan": plan}
        session = await _call(
            self._client.v1.checkout.sessions.create_async(
                params={
                    "mode": "subscription",
                    "customer": customer_id,
                    "client_reference_id": tenant_id,
                    "line_items": [{"price": price_id, "quantity": 1}],
                    "metadata": metadata,
                    "subscription_data": {"metadata": metadata},
                    "success_url": success_url,
                    "cancel_url": cancel_url,
                },
                options={"idempotency_key": idempotency_key},
            )
        )
        return str(session.url)

    async def create_portal_session(self, *, customer_id: str, return_url: str) -> str:
        """A customer portal session; its URL."""
        session = await _call(
            self._client.v1.billing_portal.sessions.create_async(
                params={"customer": customer_id, "return_url": return_url}
            )
        )
        return str(session.url)

    async def retrieve_subscription(self, subscription_id: str) -> dict[str, Any]:
        """The subscription as Stripe holds it now (plain JSON values)."""
        found = await _call(self._client.v1.subscriptions.retrieve_async(subscription_id))
        return found.to_dict(recursive=True)

    async def key_problem(self) -> str | None:
        """Why Stripe would refuse billing's calls (the key, the address), or None: asks for a
        customer that does not exist, which a working key gets a 404 for."""
        try:
            await self._client.v1.customers.retrieve_async("cus_kibitz_doctor")
        except stripe.AuthenticationError:
            return "refuses the secret key"
        except stripe.PermissionError:
            return "does not let the secret key read customers"
        except stripe.APIConnectionError as exc:
            return f"does not answer: {type(exc).__name__}"
        except stripe.StripeError as exc:
            if exc.http_status == 404:
                return None
            return f"answers {exc.http_status}"
        return None

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._http.close_async()  # type: ignore[no-untyped-call]


async def _call(request: Awaitable[T]) -> T:
    try:
        return await request
    except stripe.APIConnectionError as exc:
        logger.warning("stripe_unreachable", error=type(exc).__name__)
        raise StripeUnavailable() from exc
    except stripe.RateLimitError as exc:
        logger.warning("stripe_rate_limited", request_id=exc.request_id)
        raise StripeUnavailable() from exc
    except stripe.StripeError as exc:
        # The message names no secret (Stripe masks keys) and stays in the operator's log.
        logger.error(
            "stripe_refused",
            status=exc.http_status,
            code=exc.code,
            message=exc.user_message,
            request_id=exc.request_id,
        )
        if exc.http_status is not None and exc.http_status >= 500:
            raise StripeUnavailable() from exc
        raise StripeRefused() from exc
