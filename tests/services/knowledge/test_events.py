"""Knowledge hears `auth.account_deleted`: the deleted account's private collections go with their
documents, chunks and vectors; collections shared with the tenant and everyone else's stay. With
knowledge in the test's process and apart as `kibitz up` runs it (its parent relays the events)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from kibitz.runtime.databases import database_url_of
from tests.fixtures.stack import Account, start_stack
from tests.services.knowledge.conftest import KNOWLEDGE_ENV, KnowledgeApi

MODULES = ["auth", "tenants", "knowledge"]


async def _count(knowledge: KnowledgeApi, query: str, of: object) -> int:
    """A count from the knowledge database (SQLite keeps UUIDs as hex), `:id` being `of`."""
    url = database_url_of("knowledge", knowledge.stack.running.platform.settings)
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            params = {"id": uuid.UUID(str(of)).hex}
            return int((await connection.execute(text(query), params)).scalar_one())
    finally:
        await engine.dispose()


COLLECTIONS_OF = "SELECT count(*) FROM collections WHERE user_id = :id"
DOCUMENTS_OF = "SELECT count(*) FROM documents WHERE user_id = :id"
CHUNKS_IN = "SELECT count(*) FROM chunks WHERE collection_id = :id"


async def _indexed(knowledge: KnowledgeApi, account: Account, scope: str) -> str:
    collection = await knowledge.collection(account, name=f"{scope} notes", scope=scope)
    added = await knowledge.add_text(
        account, collection["id"], "Notes", f"Notes kept in a {scope} collection, for the team."
    )
    assert (await knowledge.settled(account, added["id"]))["status"] == "indexed"
    return str(collection["id"])


@pytest.mark.parametrize("apart", [[], ["knowledge"]], ids=["in-process", "apart-relayed"])
async def test_a_deleted_accounts_private_collections_are_erased(
    tmp_path: Path, apart: list[str]
) -> None:
    async with start_stack(
        MODULES, data_dir=tmp_path, env=KNOWLEDGE_ENV, own_processes=apart
    ) as stack:
        knowledge = KnowledgeApi(stack=stack)
        owner = await knowledge.user()  # premium: knowledge is a feature of the plan
        leaving = await knowledge.colleague(owner)
        owners = await _indexed(knowledge, owner, "private")
        private = await _indexed(knowledge, leaving, "private")
        shared = await _indexed(knowledge, leaving, "tenant")
        assert await _count(knowledge, CHUNKS_IN, private) > 0
        if not apart:
            assert await knowledge.point_count(owner.tenant_id, collection_id=private) > 0

        await stack.delete_account(leaving)

        # A few hundred ms on the bus; 10 s is a consumer that never heard it.
        for _ in range(200):
            if await _count(knowledge, COLLECTIONS_OF, leaving.user["id"]) == 1:
                break
            await asyncio.sleep(0.05)
        # The shared collection and the document in it are the tenant's, and stay.
        assert await _count(knowledge, COLLECTIONS_OF, leaving.user["id"]) == 1
        assert await _count(knowledge, DOCUMENTS_OF, leaving.user["id"]) == 1
        assert await _count(knowledge, CHUNKS_IN, private) == 0
        assert await _count(knowledge, CHUNKS_IN, shared) > 0
        if not apart:
            assert await knowledge.point_count(owner.tenant_id, collection_id=private) == 0
            assert await knowledge.point_count(owner.tenant_id, collection_id=shared) > 0
            assert await knowledge.point_count(owner.tenant_id, collection_id=owners) > 0
        listed = await knowledge.call("GET", "/collections", owner)
        assert {c["id"] for c in listed.json()["items"]} == {owners, shared}
