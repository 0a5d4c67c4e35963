"""Settings of the billing service (`KIBITZ_BILLING_…`)."""

from __future__ import annotations

from pydantic import NonNegativeInt, PositiveFloat, PositiveInt, SecretStr
from pydantic_settings import SettingsConfigDict

from kibitz.kit.settings import ServiceSettings


class BillingSettings(ServiceSettings):
    """What an operator may tune about billing; it is off until both Stripe secrets are set."""

    model_config = SettingsConfigDict(env_prefix="KIBITZ_BILLING_", extra="ignore")

    # The Stripe secret key (`sk_live_…`/`sk_test_…`) and the webhook endpoint's signing secret
    # (`whsec_…`). Both unset (the default): billing is off and plans stay free to choose.
    stripe_secret_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    # Paid plan id -> Stripe price id, as JSON: {"premium": "price_…", "gold": "price_…"}.
    prices: dict[str, str] = {}
    # The plan a tenant has when it pays for nothing (the catalogue's default plan).
    free_plan: str = "basic"
    # Where Stripe's API answers; unset: Stripe itself. Tests point it at a local stand-in.
    stripe_api_base: str | None = None
    # Where people reach the web app: Checkout and the portal send them back there.
    public_url: str = "http://localhost:8000"
    # 5 min: Stripe's own default; a signed webhook older than this is refused (replay guard).
    webhook_tolerance_seconds: PositiveInt = 300
    # 7 days: how long an unpaid subscription keeps its plan while Stripe retries the card.
    grace_period_seconds: NonNegativeInt = 7 * 24 * 3600
    # 60 s between looks for grace periods and cancelled periods that have run out.
    sweep_seconds: PositiveFloat = 60.0
    # 20 s: one Stripe API call (Stripe answers in well under a second; its outages are long).
    stripe_timeout_seconds: PositiveFloat = 20.0

    @property
    def enabled(self) -> bool:
        """Billing runs only with both Stripe secrets set."""
        return bool(
            self.stripe_secret_key
            and self.stripe_secret_key.get_secret_value()
            and self.stripe_webhook_secret
            and self.stripe_webhook_secret.get_secret_value()
        )
