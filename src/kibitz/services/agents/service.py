"""Business rules of agents: configuration, plan limits, and the catalogue of providers.
(Answering through an agent is `replies.py`.)"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.kit.address_guard import UnsafeAddressError
from kibitz.kit.db import Database
from kibitz.kit.jwt import Principal
from kibitz.kit.plans import PlanReader, TenantPlan
from kibitz.services.agents.agent_cache import AgentCache
from kibitz.services.agents.api_key_cipher import ApiKeyCipher
from kibitz.services.agents.config import AgentsSettings
from kibitz.services.agents.errors import (
    AgentNotFound,
    InvalidAgentConfig,
    PlanLimitReached,
    UnsafeBaseUrl,
)
from kibitz.services.agents.knowledge import KnowledgeSources
from kibitz.services.agents.models import Agent
from kibitz.services.agents.plans import agent_limit, allows_model, upgrade_that_allows
from kibitz.services.agents.providers.echo import LABEL as ECHO_LABEL
from kibitz.services.agents.providers.provider_set import ProviderSet
from kibitz.services.agents.providers.resilience import RetryPolicy
from kibitz.services.agents.repository import AgentRepository
from kibitz.services.agents.schemas import (
    AgentCreate,
    AgentUpdate,
    ModelOption,
    ProviderCatalogue,
    ProviderOption,
)

logger = structlog.get_logger("kibitz.agents")

_LABELS = {
    "openai": "OpenAI",
    "anthropic": "Anthropic",
    "custom": "OpenAI-compatible endpoint (Ollama, vLLM, llama.cpp, a proxy)",
    "echo": ECHO_LABEL,
}


@dataclass
class AgentsRuntime:
    """What the service needs besides a session: settings, the key cipher, providers, plans."""

    settings: AgentsSettings
    database: Database
    cipher: ApiKeyCipher
    providers: ProviderSet
    plans: PlanReader
    agents: AgentCache
    knowledge: KnowledgeSources

    @property
    def retry_policy(self) -> RetryPolicy:
        """Attempts and backoff before the first token."""
        return RetryPolicy(
            max_attempts=max(1, self.settings.max_attempts),
            base_seconds=self.settings.retry_base_seconds,
            max_seconds=self.settings.retry_max_seconds,
        )

    def size_class(self, provider: str, model: str) -> str | None:
        """The model's size class, or None when the deployment does not know the model."""
        if provider == "custom":
            return self.settings.custom_model_class
        return self.settings.model_catalogue.get(provider, {}).get(model)


def agent_read(agent: Agent) -> dict[str, Any]:
    """The public view of an agent: every field but the key, plus whether one is stored."""
    return {
        "id": agent.id,
        "tenant_id": agent.tenant_id,
        "user_id": agent.user_id,
        "name": agent.name,
        "llm_provider": agent.llm_provider,
        "model": agent.model,
        "instructions": agent.instructions,
        "temperature": agent.temperature,
        "base_url": agent.base_url,
        "has_api_key": agent.api_key_encrypted is not None,
        "knowledge_collection_ids": [uuid.UUID(c) for c in agent.knowledge_collection_ids or []],
        "created_at": _utc(agent.created_at),
        "updated_at": _utc(agent.updated_at),
    }


def _utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; every time this service stores is UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def _check_config(
    runtime: AgentsRuntime,
    *,
    provider: str,
    model: str,
    base_url: str | None,
    has_api_key: bool,
    plan: TenantPlan,
) -> None:
    """Provider, model, base_url and key must fit together, this deployment and the plan."""
    if provider == "echo":
        if model != "echo":
            raise InvalidAgentConfig("model", "the echo provider has one model: echo")
        if has_api_key:
            raise InvalidAgentConfig("api_key", "the echo provider takes no key")
    if provider != "custom" and base_url is not None:
        raise InvalidAgentConfig(
            "base_url", "only custom (OpenAI-compatible) agents take a base_url"
        )
    if provider == "custom":
        if base_url is None:
            raise InvalidAgentConfig("base_url", "custom agents need the endpoint's base_url")
        try:
            await runtime.providers.check_base_url(base_url)
        except UnsafeAddressError as exc:
            raise UnsafeBaseUrl(str(exc)) from None
    size = runtime.size_class(provider, model)
    if size is None:
        known = ", ".join(runtime.settings.model_catalogue.get(provider, {}))
        raise InvalidAgentConfig("model", f"unknown {provider} model; choose one of: {known}")
    if (
        provider in ("openai", "anthropic")
        and not runtime.providers.configured[provider]
        and not has_api_key
    ):
        raise InvalidAgentConfig(
            "api_key", f"this deployment has no {provider} key; supply your own api_key"
        )
    if not allows_model(plan, provider=provider, model=model, size_class=size):
        upgrade = upgrade_that_allows(
            plan.plan,
            lambda other: allows_model(other, provider=provider, model=model, size_class=size),
        )
        raise PlanLimitReached(
            f"The {plan.plan} plan does not include {provider} model {model}"
            + (f"; the {upgrade} plan does." if upgrade else "."),
            limit="models",
            plan=plan.plan,
            upgrade_to=upgrade,
        )


async def create_agent(
    session: AsyncSession, *, runtime: AgentsRuntime, principal: Principal, data: AgentCreate
) -> Agent:
    """Create an agent for the caller within the plan's agent count and models."""
    plan = await runtime.plans.current(principal.tenant_id, fresh=True)
    api_key = data.api_key.get_secret_value() if data.api_key else None
    await _check_config(
        runtime,
        provider=data.llm_provider,
        model=data.model,
        base_url=data.base_url,
        has_api_key=api_key is not None,
        plan=plan,
    )
    if data.knowledge_collection_ids:
        await runtime.knowledge.check_visible(
            tenant_id=principal.tenant_id,
            user_id=principal.user_id,
            collection_ids=data.knowledge_collection_ids,
        )
    repository = AgentRepository(session)
    await repository.lock_tenant(principal.tenant_id)
    count = await repository.count_for_tenant(principal.tenant_id)
    if count >= agent_limit(plan):
        upgrade = upgrade_that_allows(plan.plan, lambda other: agent_limit(other) > count)
        raise PlanLimitReached(
            f"The {plan.plan} plan allows {agent_limit(plan)} agents"
            + (f"; the {upgrade} plan allows more." if upgrade else "."),
            limit="agents",
            plan=plan.plan,
            upgrade_to=upgrade,
        )
    agent = Agent(
        tenant_id=principal.tenant_id,
        user_id=principal.user_id,
        name=data.name,
        llm_provider=data.llm_provider,
        model=data.model,
        instructions=data.instructions,
        temperature=data.temperature,
        base_url=data.base_url,
        api_key_encrypted=runtime.cipher.encrypt(api_key) if api_key else None,
        knowledge_collection_ids=[str(c) for c in dict.fromkeys(data.knowledge_collection_ids)],
    )
    repository.add(agent)
    await session.flush()
    logger.info(
        "agent_created", agent_id=str(agent.id), provider=agent.llm_provider, model=agent.model
    )
    return agent


async def list_agents(
    session: AsyncSession, *, principal: Principal, limit: int, cursor: str | None
) -> tuple[list[Agent], str | None]:
    """A page of the caller's agents and the cursor of the next page."""
    after: uuid.UUID | None = None
    if cursor:
        try:
            after = uuid.UUID(cursor)
        except ValueError:
            raise InvalidAgentConfig("cursor", "not a cursor this API returned") from None
    agents = await AgentRepository(session).list_for_user(
        tenant_id=principal.tenant_id, user_id=principal.user_id, limit=limit + 1, after=after
    )
    next_cursor = str(agents[limit - 1].id) if len(agents) > limit else None
    return agents[:limit], next_cursor


async def find_agent_id(
    session: AsyncSession, *, principal: Principal, id_or_name: str
) -> uuid.UUID:
    """The caller's agent named by id, or by a name only one of their agents has (404 else)."""
    repository = AgentRepository(session)
    try:
        agent_id = uuid.UUID(id_or_name)
    except ValueError:
        named = await repository.ids_named(
            id_or_name, tenant_id=principal.tenant_id, user_id=principal.user_id, limit=2
        )
        if len(named) != 1:
            raise AgentNotFound(
                "No agent of yours has this name."
                if not named
                else "Several of your agents have this name; use the agent's id."
            ) from None
        return named[0]
    agent = await repository.get(agent_id, tenant_id=principal.tenant_id, user_id=principal.user_id)
    if agent is None:
        raise AgentNotFound()
    return agent.id


async def get_agent(session: AsyncSession, *, principal: Principal, agent_id: uuid.UUID) -> Agent:
    """The caller's agent, or 404 (also when it belongs to someone else)."""
    agent = await AgentRepository(session).get(
        agent_id, tenant_id=principal.tenant_id, user_id=principal.user_id
    )
    if agent is None:
        raise AgentNotFound()
    return agent


async def update_agent(
    session: AsyncSession,
    *,
    runtime: AgentsRuntime,
    principal: Principal,
    agent: Agent,
    data: AgentUpdate,
) -> Agent:
    """Change an agent; the combination is re-checked against the deployment and the plan."""
    changes = data.model_dump(exclude_unset=True)
    for field in ("name", "llm_provider", "model", "instructions", "temperature"):
        if field in changes and changes[field] is None:
            raise InvalidAgentConfig(field, "may not be null")
    provider = changes.get("llm_provider", agent.llm_provider)
    model = changes.get("model", agent.model)
    # Switching away from custom drops the endpoint unless one is given explicitly.
    base_url = changes.get("base_url", agent.base_url)
    if provider != "custom" and "base_url" not in changes:
        base_url = None
    if "api_key" in changes:
        new_key = data.api_key.get_secret_value() if data.api_key else None
        encrypted = runtime.cipher.encrypt(new_key) if new_key else None
    else:
        encrypted = agent.api_key_encrypted
    if {"llm_provider", "model", "base_url", "api_key"} & changes.keys():
        plan = await runtime.plans.current(principal.tenant_id, fresh=True)
        await _check_config(
            runtime,
            provider=provider,
            model=model,
            base_url=base_url,
            has_api_key=encrypted is not None,
            plan=plan,
        )
    if "knowledge_collection_ids" in changes:
        # null clears the list, like an empty one.
        collection_ids = list(dict.fromkeys(data.knowledge_collection_ids or []))
        if collection_ids:
            await runtime.knowledge.check_visible(
                tenant_id=principal.tenant_id,
                user_id=principal.user_id,
                collection_ids=collection_ids,
            )
        agent.knowledge_collection_ids = [str(c) for c in collection_ids]
    for field in ("name", "instructions", "temperature"):
        if field in changes:
            setattr(agent, field, changes[field])
    agent.llm_provider, agent.model, agent.base_url = provider, model, base_url
    agent.api_key_encrypted = encrypted
    await session.flush()
    runtime.agents.forget(agent.id)
    return agent


async def tenant_agent_count(session: AsyncSession, *, tenant_id: uuid.UUID) -> int:
    """How many agents a tenant has (tenants asks before a downgrade)."""
    return await AgentRepository(session).count_for_tenant(tenant_id)


async def delete_agent(session: AsyncSession, *, runtime: AgentsRuntime, agent: Agent) -> None:
    """Remove an agent."""
    await AgentRepository(session).delete(agent)
    await session.flush()
    runtime.agents.forget(agent.id)


async def erase_account(
    session: AsyncSession, *, runtime: AgentsRuntime, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> int:
    """A deleted account's agents go (their stored keys with them); how many there were."""
    erased = await AgentRepository(session).delete_all_of_user(tenant_id=tenant_id, user_id=user_id)
    await session.flush()
    for agent_id in erased:
        runtime.agents.forget(agent_id)
    return len(erased)


async def provider_catalogue(*, runtime: AgentsRuntime, principal: Principal) -> ProviderCatalogue:
    """Providers and models this deployment offers, marked with what the tenant's plan allows."""
    plan = await runtime.plans.current(principal.tenant_id, fresh=True)
    items = []
    for provider in ("echo", "openai", "anthropic", "custom"):
        models = [
            ModelOption(
                id=model,
                size=size,
                allowed=allows_model(plan, provider=provider, model=model, size_class=size),
            )
            for model, size in runtime.settings.model_catalogue.get(provider, {}).items()
        ]
        custom_class = runtime.settings.custom_model_class
        allowed = (
            allows_model(plan, provider=provider, model="*", size_class=custom_class)
            if provider == "custom"
            else any(model.allowed for model in models)
        )
        accepts = {
            "openai": ["api_key"],
            "anthropic": ["api_key"],
            "custom": ["base_url", "api_key"],
        }
        items.append(
            ProviderOption(
                id=provider,
                label=_LABELS[provider],
                demo=provider == "echo",
                configured=runtime.providers.configured[provider],
                accepts=accepts.get(provider, []),
                any_model=provider == "custom",
                allowed=allowed,
                models=models,
            )
        )
    return ProviderCatalogue(plan=plan.plan, items=items)
