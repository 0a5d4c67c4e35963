"""Tenant and user isolation, generated from the services' OpenAPI documents.

Every operation with a path id is called, through the gateway of a real `kibitz up`, on a
resource owned by a member of tenant A, by three other people: the owner of another tenant, the
owner of tenant A, and another member of tenant A. Each must get 404 (or the status the contract
table below gives, with its reason), learn nothing (the answer does not echo the resource), and
change nothing (the owner reads the resource back unchanged). Then the owner makes the same call
and must not get 404: the id was real, so the 404 meant "not yours".

A new route is covered by this file without a new test: its path parameters are filled by the
factories of tests/fixtures/api_resources.py (keyed by parameter name); a parameter without a
factory fails here, saying to add one.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fixtures.api_resources import FACTORIES, Caller, Owned, register_tenant
from tests.fixtures.openapi_documents import (
    SERVICES,
    Operation,
    committed_document,
    json_body,
    operations,
    required_query,
)

pytestmark = pytest.mark.slow

# Operations with a path id that no signed-in caller is isolated on, and why.
PUBLIC_WITH_PATH_ID: dict[tuple[str, str], str] = {
    ("GET", "/auth/sso/{provider_id}/start"): "sign-in before any token: the provider id names "
    "an identity provider anyone may start a sign-in with, not a resource of a caller",
    ("GET", "/auth/sso/{provider_id}/callback"): "the identity provider's redirect back, before "
    "any token; `state` (bound to the browser) is what it checks",
}
# Operations whose path id names a person of the caller's tenant, not a resource someone owns:
# the matrix's owner/other callers do not fit them; their own tests cover every caller.
PEOPLE_OF_THE_TENANT: dict[tuple[str, str], str] = {
    ("DELETE", "/tenants/members/{user_id}"): "an owner or admin removes a person of their "
    "tenant (a member may not: 403; they list the members anyway); another tenant's user is "
    "404: tests/services/tenants/test_members.py and tests/e2e/test_leaving.py",
}
# Where the contract gives one of the callers another answer than 404, and why:
# (method, path, caller) -> (status, reason). A 2xx here is a power the contract grants, so the
# resource may change; every other caller still gets the full check.
CONTRACT_STATUS: dict[tuple[str, str, str], tuple[int, str]] = {
    ("DELETE", "/auth/api-keys/{key_id}", "same-tenant-owner"): (
        204,
        "owners and admins may revoke any key of their tenant (a leaked key is an emergency)",
    ),
}
CALLERS = ("other-tenant-owner", "same-tenant-owner", "same-tenant-member")


def _matrix() -> list[Operation]:
    return [
        operation
        for operation in operations()
        if operation.path_parameters
        and not operation.internal
        and (operation.method.upper(), operation.path) not in PUBLIC_WITH_PATH_ID
        and (operation.method.upper(), operation.path) not in PEOPLE_OF_THE_TENANT
    ]


@pytest.fixture(scope="module")
def people(gateway: httpx.Client) -> dict[str, Caller]:
    """The resource owner (a member of tenant A) and the three callers who must not reach it."""
    tenant_owner, owner, member = register_tenant(gateway, members=2)
    (stranger,) = register_tenant(gateway)
    return {
        "owner": owner,
        "other-tenant-owner": stranger,
        "same-tenant-owner": tenant_owner,
        "same-tenant-member": member,
    }


def _call(gateway: httpx.Client, operation: Operation, path: str, caller: Caller) -> httpx.Response:
    """Make the operation's request as `caller`; an event stream is closed after its head."""
    body = json_body(operation)
    request = gateway.build_request(
        operation.method.upper(),
        path,
        headers=caller.headers,
        params=required_query(operation),
        json=body,
    )
    response = gateway.send(request, stream=True)
    try:
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            response.read()
    finally:
        response.close()
    return response


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("operation", _matrix(), ids=lambda operation: operation.label)
def test_a_resource_is_invisible_and_untouchable_to_everyone_but_its_owner(
    gateway: httpx.Client, people: dict[str, Caller], operation: Operation, caller: str
) -> None:
    owner = people["owner"]
    resources: dict[str, Owned] = {}
    for name in operation.path_parameters:
        factory = FACTORIES.get(name)
        if factory is None:
            pytest.fail(
                f"{operation.label}: no factory makes a {{{name}}}; add one to FACTORIES in "
                "tests/fixtures/api_resources.py so the isolation matrix can cover this route"
            )
        resources[name] = factory(gateway, owner)
    path = operation.path.format(**{name: owned.id for name, owned in resources.items()})
    before: dict[str, Any] = {name: owned.read() for name, owned in resources.items()}

    answer = _call(gateway, operation, path, people[caller])

    expected, _ = CONTRACT_STATUS.get(
        (operation.method.upper(), operation.path, caller), (404, "not yours")
    )
    assert answer.status_code == expected, (
        f"{operation.label} by {caller} on the owner's resource answered "
        f"{answer.status_code}, not {expected}: {answer.text[:300]}"
    )
    assert answer.status_code in operation.statuses, f"{answer.status_code} is not documented"
    if expected < 400:
        return
    for owned in resources.values():
        assert owned.marker not in answer.text, f"the answer to {caller} reveals the resource"
        assert owned.id not in answer.text, f"the answer to {caller} echoes the resource id"
    after = {name: owned.read() for name, owned in resources.items()}
    assert after == before, f"{operation.label} by {caller} changed the owner's resource"

    # The control: the same request by the owner reaches the resource.
    own = _call(gateway, operation, path, owner)
    assert own.status_code < 400 or own.status_code == 409, (
        f"{operation.label} by its owner answered {own.status_code}: {own.text[:300]}"
    )


def test_an_operation_with_a_path_id_and_no_401_is_declared_public() -> None:
    undeclared = [
        operation.label
        for operation in operations()
        if operation.path_parameters
        and not operation.internal
        and 401 not in operation.statuses
        and (operation.method.upper(), operation.path) not in PUBLIC_WITH_PATH_ID
    ]
    assert not undeclared, (
        "these take a path id without a token: document their 401, or list them in "
        f"PUBLIC_WITH_PATH_ID with the reason: {undeclared}"
    )


def test_the_gateway_serves_the_documents_the_matrix_is_generated_from(
    gateway: httpx.Client,
) -> None:
    for service in SERVICES:
        served = gateway.get(f"/{service}/openapi.json")
        assert served.status_code == 200, served.text
        assert served.json() == committed_document(service), (
            f"{service}'s served OpenAPI document differs from web/openapi/{service}.json: "
            "run `make api-types`"
        )
