"""Builds the adapter for an agent: deployment clients made once, per-agent ones on demand."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import anthropic
import httpx2
import openai

from kibitz.kit.address_guard import (
    AllowList,
    PinnedAddress,
    PinnedTransport,
    UnsafeAddressError,
    check_base_url,
)
from kibitz.services.agents.config import AgentsSettings
from kibitz.services.agents.providers.anthropic_messages import AnthropicMessages
from kibitz.services.agents.providers.base import Provider, ProviderError
from kibitz.services.agents.providers.echo import EchoProvider
from kibitz.services.agents.providers.openai_chat import OpenAIChat

PROVIDERS = ("openai", "anthropic", "custom", "echo")
# Custom endpoints pinned at once; the least recently used one is closed beyond this.
_MAX_PINNED_CLIENTS = 64
# The SDKs insist on a key; an OpenAI-compatible server without auth ignores this one.
_NO_KEY = "not-needed"


@dataclass(frozen=True)
class AgentTarget:
    """Where one agent's calls go: provider, model, and the user's own base URL and key."""

    provider: str
    model: str
    base_url: str | None = None
    api_key: str | None = None


class ProviderSet:
    """The deployment's providers and a pool of pinned clients for `custom` endpoints."""

    def __init__(self, settings: AgentsSettings) -> None:
        self.settings = settings
        self.allow_list = AllowList(
            settings.allowed_private_entries(), setting="KIBITZ_AGENTS_ALLOWED_PRIVATE_HOSTS"
        )
        self.timeout = httpx2.Timeout(
            connect=settings.connect_timeout_seconds,
            read=settings.read_timeout_seconds,
            write=10.0,
            pool=10.0,
        )
        limits = httpx2.Limits(max_connections=1000, max_keepalive_connections=200)
        # One pooled HTTP client for both official APIs; the SDKs retry nothing (we do). Its
        # transport is aiohttp's (the SDKs' `aiohttp` extra): parsing each streamed chunk in C
        # costs a quarter less CPU per reply than the default pure-Python one.
        self._http = openai.DefaultAioHttpClient(
            timeout=self.timeout, limits=limits, follow_redirects=False
        )
        openai_key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        anthropic_key = (
            settings.anthropic_api_key.get_secret_value() if settings.anthropic_api_key else None
        )
        self._openai = openai.AsyncOpenAI(
            api_key=openai_key or _NO_KEY,
            base_url=settings.openai_base_url,
            http_client=self._http,
            max_retries=0,
            timeout=self.timeout,
        )
        self._anthropic = anthropic.AsyncAnthropic(
            api_key=anthropic_key or _NO_KEY,
            base_url=settings.anthropic_base_url,
            http_client=self._http,
            max_retries=0,
            timeout=self.timeout,
        )
        self.configured = {
            "openai": openai_key is not None,
            "anthropic": anthropic_key is not None,
            "custom": False,
            "echo": True,
        }
        self._echo = EchoProvider(word_delay_seconds=settings.echo_word_delay_ms / 1000.0)
        self._pinned: OrderedDict[PinnedAddress, httpx2.AsyncClient] = OrderedDict()
        self._evicted: list[httpx2.AsyncClient] = []

    async def check_base_url(self, base_url: str) -> PinnedAddress:
        """Resolve and check a user's base URL (UnsafeAddressError when refused)."""
        return await check_base_url(base_url, self.allow_list)

    async def provider_for(self, target: AgentTarget) -> Provider:
        """The adapter that serves this agent (ProviderError when it cannot be reached safely)."""
        if target.provider == "echo":
            return self._echo
        if target.provider == "openai":
            client = self._openai
            if target.api_key:
                client = client.with_options(api_key=target.api_key)
            return OpenAIChat(client)
        if target.provider == "anthropic":
            messages_client = self._anthropic
            if target.api_key:
                messages_client = messages_client.with_options(api_key=target.api_key)
            return AnthropicMessages(
                messages_client, send_temperature=self.settings.anthropic_send_temperature
            )
        if target.provider == "custom" and target.base_url:
            try:
                pinned = await self.check_base_url(target.base_url)
            except UnsafeAddressError as exc:
                raise ProviderError("rejected", f"The agent's base_url {exc}.") from None
            custom = openai.AsyncOpenAI(
                api_key=target.api_key or _NO_KEY,
                base_url=target.base_url,
                http_client=self._pinned_client(pinned),
                max_retries=0,
                timeout=self.timeout,
            )
            return OpenAIChat(custom, name="custom")
        raise ProviderError("rejected", f"Unknown provider {target.provider!r}.")

    def _pinned_client(self, pinned: PinnedAddress) -> httpx2.AsyncClient:
        client = self._pinned.get(pinned)
        if client is not None:
            self._pinned.move_to_end(pinned)
            return client
        client = httpx2.AsyncClient(
            transport=PinnedTransport(pinned),
            timeout=self.timeout,
            follow_redirects=False,
            trust_env=False,
        )
        self._pinned[pinned] = client
        while len(self._pinned) > _MAX_PINNED_CLIENTS:
            # Not closed here: a stream in flight may still use it; closed at shutdown.
            self._evicted.append(self._pinned.popitem(last=False)[1])
        return client

    async def aclose(self) -> None:
        """Close every pooled connection."""
        await self._http.aclose()
        for client in [*self._pinned.values(), *self._evicted]:
            await client.aclose()
        self._pinned.clear()
        self._evicted.clear()
