"""schemathesis over every service's OpenAPI document, through the gateway of a real `kibitz up`.

Every operation of each service's document (web/openapi/<service>.json, which the gateway serves
unchanged: tests/e2e/test_isolation_matrix.py checks it) is called through the gateway with
examples generated from the document, valid and invalid ones, signed in as the owner of a tenant
on the plan with every feature. Every answer must be no server error, a documented status code,
with the documented content type and a body matching its schema.

Every other example points at real resources: its path ids, and the body fields named like them
(`agent_id`, `chat_id`, …), become ids made by the factories of tests/fixtures/api_resources.py
(a fresh one for each DELETE), so the answers past "404 not found" are checked too. Bounded:
`MAX_EXAMPLES` per operation, and past `BUDGET_SECONDS` only each operation's first example is
still sent. A failure prints the request as a curl command.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis import Case
from schemathesis.config import SchemathesisConfig
from schemathesis.schemas import BaseSchema

from tests.fixtures.api_resources import FACTORIES, Caller, Owned, register_tenant
from tests.fixtures.openapi_documents import SERVICES, committed_document

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 10
BUDGET_SECONDS = 90.0
# Fixed, so that a run in CI repeats; set KIBITZ_TEST_FUZZ_SEED to explore other examples.
SEED = int(os.environ.get("KIBITZ_TEST_FUZZ_SEED", "20261207"))

# Operations left out, and why (each service's document lists them, the gateway's contract differs).
EXCLUDED: dict[str, str] = {
    # path regex -> reason
    r"/internal/": "service-to-service routes: the gateway never routes them (404), a service "
    "token guards them; tests/services cover each",
    r"^/(healthz|readyz)$": "each service's own probes: through the gateway these paths are the "
    "gateway's probes; tests/runtime covers both",
    r"^/chat/stream/": "an SSE stream that never ends by itself (heartbeats); its events are "
    "tested in tests/e2e/test_chat_streaming.py",
}
# Not in any document, so not here either: the chat WebSocket (`/chat/ws/{chat_id}`, FastAPI lists
# no WebSocket routes) and the OpenAI-compatible `/v1/…` (OpenAI's contract, tests/services/agents).

CONFIG: dict[str, Any] = {
    "seed": SEED,
    "suppress-health-check": ["all"],
    "request-timeout": 15,
    "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "database": "none"},
    # The coverage phase enumerates every boundary case of a schema whatever `max-examples`
    # says: far past the time budget. Examples and fuzzing cover the same ground, sampled.
    "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
    "checks": {
        "enabled": False,
        "not_a_server_error": {"enabled": True},
        "status_code_conformance": {"enabled": True},
        "content_type_conformance": {"enabled": True},
        "response_schema_conformance": {"enabled": True},
    },
}


@dataclass
class Budget:
    """The run's time budget, and which operations have had their first example sent."""

    deadline: float
    started: set[str] = field(default_factory=set)
    skipped: int = 0

    def allows(self, label: str) -> bool:
        """True while time is left, and always for an operation's first example."""
        if label not in self.started:
            self.started.add(label)
            return True
        if time.monotonic() < self.deadline:
            return True
        self.skipped += 1
        return False


@pytest.fixture(scope="module")
def budget() -> Iterator[Budget]:
    spent = Budget(deadline=time.monotonic() + BUDGET_SECONDS)
    yield spent
    if spent.skipped:
        print(f"\nfuzz budget of {BUDGET_SECONDS:.0f} s spent: {spent.skipped} examples not sent")


@dataclass
class Fuzzer:
    """The signed-in user the examples run as, and the real resources they may point at."""

    http: httpx.Client
    user: Caller
    resources: dict[str, Owned] = field(default_factory=dict)
    sent: dict[str, int] = field(default_factory=dict)

    def real_id(self, name: str, *, fresh: bool) -> str | None:
        """A real id for a parameter or field called `name`: a new resource when `fresh` (one to
        delete), else one made once and kept. None without a factory (that gap fails
        tests/e2e/test_isolation_matrix.py, not this suite)."""
        factory = FACTORIES.get(name)
        if factory is None:
            return None
        if fresh:
            return factory(self.http, self.user).id
        if name not in self.resources:
            self.resources[name] = factory(self.http, self.user)
        return self.resources[name].id


@pytest.fixture(scope="module")
def fuzzers(gateway: httpx.Client) -> dict[str, Fuzzer]:
    """One user (the owner of a new tenant) per service, so one service's examples (a plan
    change, a deleted chat) never change what another service's examples see."""
    return {service: Fuzzer(gateway, register_tenant(gateway)[0]) for service in SERVICES}


def _schema(service: str) -> BaseSchema:
    """The service's document, operations left out excluded."""
    loaded: BaseSchema = schemathesis.openapi.from_dict(
        committed_document(service), config=SchemathesisConfig.from_dict(CONFIG)
    )
    for path_regex in EXCLUDED:
        loaded = loaded.exclude(path_regex=path_regex)
    return loaded


# Built at collection, so that each operation is a test of its own (`-k "POST /chat/send"`).
schemas = schemathesis.pytest.parametrize(**{service: _schema(service) for service in SERVICES})


@schemas
def test_every_answer_is_documented_and_no_server_error(
    case: Case[Any], gateway_url: str, fuzzers: dict[str, Fuzzer], budget: Budget
) -> None:
    label = f"{case.method} {case.path}"
    if not budget.allows(label):
        return
    fuzzer = fuzzers[case.path.split("/")[1]]
    count = fuzzer.sent.get(label, 0)
    fuzzer.sent[label] = count + 1
    if count % 2 == 1:
        fresh = case.method == "DELETE"
        for name in list(case.path_parameters or {}):
            real = fuzzer.real_id(name, fresh=fresh)
            if real is not None:
                case.path_parameters[name] = real
        if isinstance(case.body, dict):
            for name in [key for key in case.body if key in FACTORIES]:
                case.body[name] = fuzzer.real_id(name, fresh=False)
    case.call_and_validate(base_url=gateway_url, headers=fuzzer.user.headers)
