"""Indexing jobs survive their process: a restart finishes a document left mid-indexing, and one
whose attempts ran out is failed with the reason, never left `indexing`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from kibitz.services.knowledge.models import Document
from tests.fixtures.stack import start_stack
from tests.services.knowledge.conftest import KNOWLEDGE_ENV, KnowledgeApi

STACK = ["auth", "tenants", "knowledge"]


async def _crash_mid_indexing(knowledge: KnowledgeApi, document_id: str, *, attempts: int) -> None:
    """Leave the document as a process that died while indexing it would: claimed, its lease
    running, no chunks."""
    runtime = knowledge.stack.running.apps["knowledge"].state.knowledge
    async with runtime.database.transaction() as session:
        await session.execute(
            update(Document)
            .where(Document.id == uuid.UUID(document_id))
            .values(
                status="indexing",
                attempts=attempts,
                lease_until=datetime.now(UTC) + timedelta(seconds=1),
            )
        )


@pytest.mark.parametrize(("attempts", "outcome"), [(1, "indexed"), (2, "failed")])
async def test_a_restart_finishes_or_fails_a_document_left_mid_indexing(
    tmp_path: Path, attempts: int, outcome: str
) -> None:
    # The first process never indexes: its worker is stopped, as if it died right after claiming.
    async with start_stack(STACK, data_dir=tmp_path, env=KNOWLEDGE_ENV) as stack:
        knowledge = KnowledgeApi(stack)
        await stack.running.apps["knowledge"].state.knowledge.worker.stop()
        owner = await knowledge.user()
        collection = await knowledge.collection(owner)
        document = await knowledge.add_text(
            owner, collection["id"], "Holidays", "Staff get twenty-five days of paid leave."
        )
        await _crash_mid_indexing(knowledge, document["id"], attempts=attempts)
        assert (await knowledge.call("GET", f"/documents/{document['id']}", owner)).json()[
            "status"
        ] == "indexing"

    async with start_stack(STACK, data_dir=tmp_path, env=KNOWLEDGE_ENV) as stack:
        knowledge = KnowledgeApi(stack)
        settled = await knowledge.settled(owner, document["id"], timeout=30)
        assert settled["status"] == outcome, settled
        if outcome == "indexed":
            assert settled["chunks"] == 1
            hits = await knowledge.search(owner, "vacation allowance", [collection["id"]])
            assert [hit["document_id"] for hit in hits.json()["items"]] == [document["id"]]
        else:
            assert "interrupted" in settled["error"]
            assert await knowledge.point_count(owner.tenant_id) == 0
