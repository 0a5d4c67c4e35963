"""Request-scoped dependencies: the session, the service runtime, and owned-agent lookups."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request

from kibitz.kit.db import SessionDep
from kibitz.kit.security import CurrentPrincipal
from kibitz.services.agents import service
from kibitz.services.agents.models import Agent
from kibitz.services.agents.service import AgentsRuntime


async def agents_runtime(request: Request) -> AgentsRuntime:
    """The service's runtime (providers, caches, settings)."""
    runtime: AgentsRuntime = request.app.state.agents
    return runtime


RuntimeDep = Annotated[AgentsRuntime, Depends(agents_runtime)]


async def _owned_agent(
    agent_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep
) -> Agent:
    return await service.get_agent(session, principal=principal, agent_id=agent_id)


OwnedAgent = Annotated[Agent, Depends(_owned_agent)]
