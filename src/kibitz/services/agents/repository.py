"""Every query of the agents service; each takes its tenant/user scope as arguments."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.services.agents.models import Agent


class AgentRepository:
    """Agents, always filtered by owner."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(
        self, agent_id: uuid.UUID, *, tenant_id: uuid.UUID, user_id: uuid.UUID
    ) -> Agent | None:
        """The agent if it belongs to this user in this tenant."""
        query = select(Agent).where(
            Agent.id == agent_id, Agent.tenant_id == tenant_id, Agent.user_id == user_id
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def list_for_user(
        self, *, tenant_id: uuid.UUID, user_id: uuid.UUID, limit: int, after: uuid.UUID | None
    ) -> list[Agent]:
        """A page of the user's agents, oldest first (ids are time-ordered)."""
        query = select(Agent).where(Agent.tenant_id == tenant_id, Agent.user_id == user_id)
        if after is not None:
            query = query.where(Agent.id > after)
        query = query.order_by(Agent.id).limit(limit)
        return list((await self.session.execute(query)).scalars())

    async def ids_named(
        self, name: str, *, tenant_id: uuid.UUID, user_id: uuid.UUID, limit: int
    ) -> list[uuid.UUID]:
        """Ids of the user's agents with exactly this name (at most `limit`)."""
        query = (
            select(Agent.id)
            .where(Agent.tenant_id == tenant_id, Agent.user_id == user_id, Agent.name == name)
            .order_by(Agent.id)
            .limit(limit)
        )
        return list((await self.session.execute(query)).scalars())

    async def count_for_tenant(self, tenant_id: uuid.UUID) -> int:
        """How many agents the tenant has (the plan's `agents` limit counts these)."""
        query = select(func.count()).select_from(Agent).where(Agent.tenant_id == tenant_id)
        return int((await self.session.execute(query)).scalar_one())

    async def lock_tenant(self, tenant_id: uuid.UUID) -> None:
        """Serialize agent creation per tenant so two creates cannot both pass the count check.

        SQLite transactions begin IMMEDIATE (one writer at a time) already; PostgreSQL takes a
        transaction-scoped advisory lock on the tenant.
        """
        if self.session.get_bind().dialect.name == "postgresql":
            key = int.from_bytes(tenant_id.bytes[:8], "big", signed=True)
            await self.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    def add(self, agent: Agent) -> None:
        """Stage a new agent."""
        self.session.add(agent)

    async def delete(self, agent: Agent) -> None:
        """Stage the agent's removal."""
        await self.session.delete(agent)

    async def delete_all_of_user(
        self, *, tenant_id: uuid.UUID, user_id: uuid.UUID
    ) -> list[uuid.UUID]:
        """Stage the removal of every agent of the user; their ids."""
        mine = (Agent.tenant_id == tenant_id, Agent.user_id == user_id)
        ids = list((await self.session.execute(select(Agent.id).where(*mine))).scalars())
        await self.session.execute(delete(Agent).where(*mine))
        return ids


class StoredKeyRepository:
    """Users' stored provider keys (ciphertexts) across every tenant: only for the operator's
    key rotation, which must reach them all and reads nothing else."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def page_after(
        self, after: uuid.UUID | None, *, limit: int
    ) -> list[tuple[uuid.UUID, str]]:
        """(agent id, ciphertext) of up to `limit` agents with a stored key, in id order."""
        query = select(Agent.id, Agent.api_key_encrypted).where(
            Agent.api_key_encrypted.is_not(None)
        )
        if after is not None:
            query = query.where(Agent.id > after)
        rows = await self.session.execute(query.order_by(Agent.id).limit(limit))
        return [(agent_id, str(token)) for agent_id, token in rows]

    async def replace(self, agent_id: uuid.UUID, *, old: str, new: str) -> bool:
        """Store `new` for the agent if its ciphertext is still `old` (a replica may have stored
        another key meanwhile: that one stays); whether it was replaced."""
        result = await self.session.execute(
            update(Agent)
            .where(Agent.id == agent_id, Agent.api_key_encrypted == old)
            .values(api_key_encrypted=new)
        )
        return bool(getattr(result, "rowcount", 0))
