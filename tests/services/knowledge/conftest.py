"""Fixtures of the knowledge tests: auth, tenants and knowledge on loopback, the real local model
and Qdrant's embedded mode."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import DATABASES
from tests.fixtures.stack import Account, Stack, start_stack

PROBLEM = "application/problem+json"
KNOWLEDGE_ENV = {
    # Small chunks: a few paragraphs give several chunks; fast polling for background jobs.
    "KIBITZ_KNOWLEDGE_CHUNK_CHARS": "400",
    "KIBITZ_KNOWLEDGE_CHUNK_OVERLAP_CHARS": "60",
    "KIBITZ_KNOWLEDGE_JOB_POLL_SECONDS": "0.2",
    "KIBITZ_KNOWLEDGE_PLAN_CACHE_SECONDS": "0",
    "KIBITZ_KNOWLEDGE_MAX_UPLOAD_BYTES": "200000",
}


@dataclass
class KnowledgeApi:
    """Calls to the knowledge service as one user or another."""

    stack: Stack

    @property
    def url(self) -> str:
        return self.stack.url("knowledge")

    @property
    def http(self) -> httpx.AsyncClient:
        return self.stack.http

    async def user(self, plan: str | None = "premium", **extra: Any) -> Account:
        """A new user in a new tenant (on `plan`)."""
        account = await self.stack.register(**extra)
        if plan is not None and plan != "basic":
            await self.subscribe(account, plan)
        return account

    async def subscribe(self, account: Account, plan: str) -> None:
        response = await self.http.post(
            f"{self.stack.url('tenants')}/tenants/subscribe",
            json={"plan": plan},
            headers=account.headers,
        )
        assert response.status_code == 200, response.text

    async def colleague(self, owner: Account) -> Account:
        """Another member of the owner's tenant."""
        invite = await self.http.post(
            f"{self.stack.url('tenants')}/tenants/invites", json={}, headers=owner.headers
        )
        assert invite.status_code == 201, invite.text
        return await self.stack.register(invite_code=invite.json()["code"])

    async def call(self, method: str, path: str, account: Account, **kwargs: Any) -> httpx.Response:
        return await self.http.request(
            method, f"{self.url}/knowledge{path}", headers=account.headers, **kwargs
        )

    async def collection(self, account: Account, **fields: Any) -> dict[str, Any]:
        response = await self.call(
            "POST", "/collections", account, json={"name": "Handbook", **fields}
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def add_text(
        self, account: Account, collection_id: str, title: str, text: str
    ) -> dict[str, Any]:
        response = await self.call(
            "POST",
            f"/collections/{collection_id}/documents",
            account,
            json={"title": title, "text": text},
        )
        assert response.status_code == 202, response.text
        return dict(response.json())

    async def upload(
        self,
        account: Account,
        collection_id: str,
        filename: str,
        content: bytes,
        content_type: str = "application/octet-stream",
    ) -> httpx.Response:
        return await self.call(
            "POST",
            f"/collections/{collection_id}/documents",
            account,
            files={"file": (filename, content, content_type)},
        )

    async def settled(
        self, account: Account, document_id: str, timeout: float = 60.0
    ) -> dict[str, Any]:
        """The document once it is `indexed` or `failed`."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            response = await self.call("GET", f"/documents/{document_id}", account)
            assert response.status_code == 200, response.text
            body = dict(response.json())
            if body["status"] in ("indexed", "failed"):
                return body
            assert asyncio.get_running_loop().time() < deadline, body
            await asyncio.sleep(0.1)

    async def search(
        self, account: Account, query: str, collection_ids: list[str], top_k: int = 5
    ) -> httpx.Response:
        return await self.call(
            "POST",
            "/search",
            account,
            json={"query": query, "collection_ids": collection_ids, "top_k": top_k},
        )

    async def point_count(self, tenant_id: str, **fields: str) -> int:
        """Points Qdrant holds for this tenant (and document/collection)."""
        import uuid

        runtime = self.stack.running.apps["knowledge"].state.knowledge
        return int(
            await runtime.vectors.count(
                tenant_id=uuid.UUID(tenant_id), **{k: uuid.UUID(v) for k, v in fields.items()}
            )
        )


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The answer is a problem+json document with this status."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = dict(response.json())
    assert body["status"] == status and body["title"] and body["detail"]
    return body


@pytest.fixture(scope="module", params=DATABASES)
async def knowledge(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[KnowledgeApi]:
    """Auth, tenants and knowledge on SQLite and on PostgreSQL, with the local embedding model."""
    data_dir = tmp_path_factory.mktemp("knowledge")
    async with start_stack(
        ["auth", "tenants", "knowledge"],
        data_dir=data_dir,
        database=str(request.param),
        env=KNOWLEDGE_ENV,
    ) as stack:
        yield KnowledgeApi(stack=stack)
