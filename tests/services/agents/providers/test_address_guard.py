"""SSRF guard: private targets refused unless allow-listed; the checked address is the one used."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pytest

from kibitz.kit.address_guard import (
    AllowList,
    PinnedAddress,
    PinnedTransport,
    UnsafeAddressError,
    check_base_url,
    is_public,
)
from kibitz.services.agents.config import AgentsSettings
from kibitz.services.agents.providers.base import ProviderError
from kibitz.services.agents.providers.provider_set import AgentTarget, ProviderSet
from tests.fixtures.simulator import RunningSimulator
from tests.fixtures.stack import start_stack
from tests.services.agents.conftest import AgentsApi, agents_env, assert_problem

REFUSED = [
    "http://127.0.0.1:11434/v1",
    "http://10.0.0.1/v1",
    "http://169.254.169.254/latest/meta-data",
    "http://[::ffff:7f00:1]/v1",
    "http://[::1]:8000/v1",
    "http://localhost:11434/v1",
    "http://0.0.0.0/v1",
    "http://192.168.1.10/v1",
    "http://172.16.0.1/v1",
    "http://100.64.0.1/v1",
    "http://[fd00:ec2::254]/v1",
    "http://2130706433/v1",
    # IPv6 forms of private IPv4 addresses (issue 15): NAT64, IPv4-compatible, -translated…
    "http://[64:ff9b::a9fe:a9fe]/latest/meta-data",
    "http://[::169.254.169.254]/v1",
    "http://[::ffff:0:a9fe:a9fe]/v1",
    "http://[64:ff9b::7f00:1]/v1",
    "http://[::127.0.0.1]/v1",
    "http://[fec0::1]/v1",
    "http://[64:ff9b:1::808:808]/v1",
    "http://[2002:a9fe:a9fe::1]/v1",
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/v1",
]
BAD_SYNTAX = [
    "ftp://example.com/v1",
    "file:///etc/passwd",
    "gopher://example.com",
    "javascript:alert(1)",
    "http:///v1",
    "http://user:secret@example.com/v1",
    "example.com/v1",
]


@pytest.fixture(scope="module")
async def guarded(
    tmp_path_factory: pytest.TempPathFactory, sim: RunningSimulator
) -> AsyncIterator[AgentsApi]:
    """Agents with no allow-list at all."""
    env = agents_env(sim, KIBITZ_AGENTS_ALLOWED_PRIVATE_HOSTS="")
    async with start_stack(
        ["auth", "agents"], data_dir=tmp_path_factory.mktemp("agents"), env=env
    ) as stack:
        yield AgentsApi(stack=stack, sim=sim)


@pytest.mark.parametrize("base_url", REFUSED + BAD_SYNTAX)
async def test_check_refuses_private_targets_and_non_http_schemes(base_url: str) -> None:
    with pytest.raises(UnsafeAddressError):
        await check_base_url(base_url, AllowList([]))


async def test_check_accepts_a_public_address_and_pins_it() -> None:
    pinned = await check_base_url("https://8.8.8.8/v1", AllowList([]))
    assert pinned == PinnedAddress(scheme="https", host="8.8.8.8", port=443, ip="8.8.8.8")


@pytest.mark.parametrize(
    ("entries", "base_url"),
    [
        (["127.0.0.1"], "http://127.0.0.1:9/v1"),
        (["127.0.0.0/8"], "http://localhost:9/v1"),
        (["localhost"], "http://localhost:9/v1"),
        (["10.0.0.0/8"], "http://10.1.2.3/v1"),
    ],
)
async def test_the_allow_list_admits_named_hosts_and_networks(
    entries: list[str], base_url: str
) -> None:
    pinned = await check_base_url(base_url, AllowList(entries))
    assert pinned.ip.startswith(("127.", "10.", "::1"))


def test_only_global_unicast_addresses_are_public() -> None:
    import ipaddress

    for address in ("1.1.1.1", "2606:4700:4700::1111", "64:ff9b::808:808", "2002:808:808::1"):
        assert is_public(ipaddress.ip_address(address)), address
    for address in (
        "127.0.0.1",
        "10.0.0.1",
        "169.254.169.254",
        "::ffff:7f00:1",
        "2002:7f00:1::",
        "224.0.0.1",
        "::",
        "64:ff9b::a9fe:a9fe",
        "::169.254.169.254",
        "::ffff:0:a9fe:a9fe",
        "64:ff9b::7f00:1",
        "::127.0.0.1",
        "fec0::1",
        "64:ff9b::a00:1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    ):
        assert not is_public(ipaddress.ip_address(address)), address


@pytest.mark.parametrize("base_url", [*REFUSED[:6], "ftp://example.com/v1", "file:///etc/passwd"])
async def test_creating_a_custom_agent_at_a_private_address_is_refused(
    guarded: AgentsApi, base_url: str
) -> None:
    account = await guarded.user()
    response = await guarded.create(
        account, llm_provider="custom", model="llama3", base_url=base_url
    )
    problem = assert_problem(response, 422)
    assert problem["errors"][0]["field"] == "base_url"


async def test_the_address_is_checked_again_when_the_agent_answers(sim: RunningSimulator) -> None:
    providers = ProviderSet(AgentsSettings(allowed_private_hosts=""))
    try:
        with pytest.raises(ProviderError) as caught:
            await providers.provider_for(
                AgentTarget(provider="custom", model="m", base_url=sim.openai_base_url)
            )
        assert caught.value.kind == "rejected"
    finally:
        await providers.aclose()


async def test_the_pinned_transport_connects_to_the_checked_address(sim: RunningSimulator) -> None:
    port = int(sim.url.rsplit(":", 1)[1])
    # A name that resolves nowhere: only the pinned address makes the call possible.
    pinned = PinnedAddress(scheme="http", host="model.invalid", port=port, ip="127.0.0.1")
    async with httpx2.AsyncClient(transport=PinnedTransport(pinned)) as client:
        response = await client.get(f"http://model.invalid:{port}/v1/models")
        assert response.status_code == 200
        with pytest.raises(httpx2.ConnectError):
            await client.get(f"http://elsewhere.invalid:{port}/v1/models")
