"""Request-scoped dependencies: the session, the service runtime, and owned-agent lookups."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.kit.security import CurrentPrincipal
from kibitz.services.agents import service
from kibitz.services.agents.models import Agent
from kibitz.services.agents.service import AgentsRuntime


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    runtime: AgentsRuntime = request.app.state.agents
    async for session in runtime.database.session_for_request():
        yield session


def _runtime(request: Request) -> AgentsRuntime:
    runtime: AgentsRuntime = request.app.state.agents
    return runtime


# scope="function": the transaction commits before the response is sent (read-your-writes).
SessionDep = Annotated[AsyncSession, Depends(_session, scope="function")]
RuntimeDep = Annotated[AgentsRuntime, Depends(_runtime)]


async def _owned_agent(
    agent_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep
) -> Agent:
    return await service.get_agent(session, principal=principal, agent_id=agent_id)


OwnedAgent = Annotated[Agent, Depends(_owned_agent)]
