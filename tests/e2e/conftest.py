"""One real `kibitz up` shared by the black-box suites of this package that ask for it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.fixtures.all_in_one import kibitz_up
from tests.fixtures.openapi_documents import SERVICES

# Suites register many users from one address and make many requests per minute: the limits
# under test elsewhere (tests/gateway, tests/e2e/test_rate_classes.py) must not answer here.
BLACK_BOX_ENV = {
    "KIBITZ_GATEWAY_AUTH_IP_REQUESTS_PER_MINUTE": "100000",
    "KIBITZ_GATEWAY_READ_REQUESTS_PER_MINUTE": "100000",
    "KIBITZ_AGENTS_ECHO_WORD_DELAY_MS": "0",
}


@pytest.fixture(scope="package")
def gateway_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The gateway of a running `kibitz up`, once every service serves its OpenAPI document."""
    with kibitz_up(tmp_path_factory.mktemp("black-box"), BLACK_BOX_ENV) as url:
        deadline = time.monotonic() + 60
        pending = list(SERVICES)
        while pending:
            service = pending[0]
            try:
                if httpx.get(f"{url}/{service}/openapi.json", timeout=5).status_code == 200:
                    pending.pop(0)
                    continue
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"{service} serves no OpenAPI document"
            time.sleep(0.2)
        yield url


@pytest.fixture(scope="package")
def gateway(gateway_url: str) -> Iterator[httpx.Client]:
    """An HTTP client on the gateway."""
    with httpx.Client(base_url=gateway_url, timeout=30, trust_env=False) as client:
        yield client
