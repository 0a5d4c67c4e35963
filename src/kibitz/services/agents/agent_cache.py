"""A short-lived, per-process cache of agents for the reply path (the hot path of every message).

Reading the agent costs several database round trips (a thread hop each on SQLite); a chat
sends many messages to the same agent. Changes made through this process invalidate at once;
changes made through another replica are seen within `ttl_seconds`.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

# Entries kept at most; the oldest half is dropped beyond it.
_MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class AgentSnapshot:
    """What answering needs of an agent (the key stays encrypted)."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    llm_provider: str
    model: str
    instructions: str
    temperature: float
    base_url: str | None
    api_key_encrypted: str | None
    knowledge_collection_ids: tuple[uuid.UUID, ...] = ()


class AgentCache:
    """Snapshots keyed by (agent, tenant, user): a lookup can only find the caller's own agent."""

    def __init__(self, ttl_seconds: float) -> None:
        self.ttl_seconds = ttl_seconds
        self._entries: dict[
            tuple[uuid.UUID, uuid.UUID, uuid.UUID], tuple[float, AgentSnapshot]
        ] = {}

    def get(
        self, agent_id: uuid.UUID, *, tenant_id: uuid.UUID, user_id: uuid.UUID
    ) -> AgentSnapshot | None:
        """A fresh snapshot, if one is cached."""
        entry = self._entries.get((agent_id, tenant_id, user_id))
        if entry is None or time.monotonic() - entry[0] > self.ttl_seconds:
            return None
        return entry[1]

    def put(self, snapshot: AgentSnapshot) -> None:
        """Remember a snapshot (no-op when the TTL is 0)."""
        if self.ttl_seconds <= 0:
            return
        if len(self._entries) >= _MAX_ENTRIES:
            for key in list(self._entries)[: _MAX_ENTRIES // 2]:
                del self._entries[key]
        key = (snapshot.id, snapshot.tenant_id, snapshot.user_id)
        self._entries[key] = (time.monotonic(), snapshot)

    def forget(self, agent_id: uuid.UUID) -> None:
        """Drop every snapshot of this agent (after a change or delete)."""
        for key in [key for key in self._entries if key[0] == agent_id]:
            del self._entries[key]
