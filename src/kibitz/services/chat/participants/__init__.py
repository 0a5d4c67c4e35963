"""A chat's participants: 1 to 8 of the caller's agents (the first is the default) and the mode they
answer in. More than one agent, or a mode other than `direct`, needs the plan feature
`multi_agent`; an orchestrated chat's first agent must be able to call tools (not `echo`)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.kit.http import ServiceClient
from kibitz.kit.jwt import Principal
from kibitz.kit.plans import PlanReader, TenantPlan
from kibitz.kit.platform import Platform
from kibitz.services.chat.errors import OrchestratorCannotCallTools
from kibitz.services.chat.models import Chat, utcnow
from kibitz.services.chat.repository import ChatRepository
from kibitz.services.chat.schemas import ChatCreate, ChatRead, ChatUpdate
from kibitz.services.chat.sending.checks import check_agent

FEATURE = "multi_agent"
# Providers whose models cannot call tools, so cannot orchestrate (the offline demo).
NO_TOOLS = frozenset({"echo"})


def plan_reader(platform: Platform, *, cache_seconds: float) -> PlanReader:
    """Plans from the tenants service. Without one (chat deployed without tenants) every tenant
    may have several agents in a chat; a tenant it does not know yet has no features."""
    return PlanReader(
        platform,
        cache_seconds=cache_seconds,
        without_tenants=TenantPlan(plan="default", limits={}, features=[FEATURE]),
        not_yet_known=TenantPlan(plan="basic", limits={}, features=[]),
    )


def needs_multi_agent(agent_ids: list[uuid.UUID], mode: str) -> bool:
    """Whether these participants need the `multi_agent` feature."""
    return len(agent_ids) > 1 or mode != "direct"


async def check_participants(
    *,
    agents: ServiceClient,
    plans: PlanReader,
    principal: Principal,
    agent_ids: list[uuid.UUID],
    mode: str,
    access_token: str,
    already_checked: frozenset[uuid.UUID] = frozenset(),
) -> None:
    """The plan allows these participants (403 `feature-not-in-plan`), each is an agent the
    caller may use (404 `agent-not-found`; agents `already_checked` are not asked about again)
    and an orchestrator can call tools (422 `orchestrator-cannot-call-tools`)."""
    if needs_multi_agent(agent_ids, mode):
        plan = await plans.current(principal.tenant_id)
        if not plan.has(FEATURE):  # a refusal is read afresh: an upgrade lifts it at once
            await plans.current(principal.tenant_id, fresh=True)
            await plans.require(principal.tenant_id, FEATURE, bearer_token=access_token)
    new = [agent_id for agent_id in agent_ids if agent_id not in already_checked]
    found = await asyncio.gather(*(check_agent(agents, agent_id, access_token) for agent_id in new))
    if mode == "orchestrated":
        # The orchestrator consults the others through tool calls: its provider must have them.
        orchestrator = dict(zip(new, found, strict=True)).get(agent_ids[0]) or await check_agent(
            agents, agent_ids[0], access_token
        )
        provider = str(orchestrator.get("llm_provider"))
        if provider in NO_TOOLS:
            raise OrchestratorCannotCallTools(str(orchestrator.get("name")), provider)


def participants_of(chat: Chat) -> list[uuid.UUID]:
    """The chat's agents, the default first."""
    return [uuid.UUID(str(value)) for value in chat.agent_ids]


async def create_chat(
    session: AsyncSession,
    *,
    agents: ServiceClient,
    plans: PlanReader,
    principal: Principal,
    body: ChatCreate,
    access_token: str,
) -> dict[str, Any]:
    """A new chat with its participants and no messages yet."""
    await check_participants(
        agents=agents,
        plans=plans,
        principal=principal,
        agent_ids=body.agent_ids,
        mode=body.mode,
        access_token=access_token,
    )
    now = utcnow()
    chat = Chat(
        tenant_id=principal.tenant_id,
        user_id=principal.user_id,
        agent_id=body.agent_ids[0],
        agent_ids=[str(agent_id) for agent_id in body.agent_ids],
        mode=body.mode,
        title=body.title or "New chat",
        created_at=now,
        updated_at=now,
    )
    ChatRepository(session).add(chat)
    await session.flush()
    return ChatRead.model_validate(chat).model_dump(mode="json")


async def update_chat(
    session: AsyncSession,
    *,
    chat: Chat,
    agents: ServiceClient,
    plans: PlanReader,
    principal: Principal,
    body: ChatUpdate,
    access_token: str,
) -> dict[str, Any]:
    """Rename the chat, change its participants or its mode."""
    if body.agent_ids is not None or body.mode is not None:
        current = participants_of(chat)
        agent_ids = body.agent_ids or current
        mode = body.mode or chat.mode
        await check_participants(
            agents=agents,
            plans=plans,
            principal=principal,
            agent_ids=agent_ids,
            mode=mode,
            access_token=access_token,
            # Agents already in the chat were checked when they joined.
            already_checked=frozenset(current),
        )
        chat.agent_id = agent_ids[0]
        chat.agent_ids = [str(agent_id) for agent_id in agent_ids]
        chat.mode = mode
    if body.title is not None:
        chat.title = body.title.strip() or chat.title
    chat.updated_at = utcnow()
    await session.flush()
    return ChatRead.model_validate(chat).model_dump(mode="json")
