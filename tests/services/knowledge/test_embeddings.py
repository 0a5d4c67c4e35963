"""An OpenAI-compatible embeddings endpoint instead of the local model (the deployment setting),
through the official SDK against the simulator: plumbing only, quality is the local model's."""

from __future__ import annotations

from pathlib import Path

from kibitz.services.knowledge.retrieval.embeddings import LocalEmbedder
from tests.fixtures.simulator import start_simulator
from tests.fixtures.stack import start_stack
from tests.services.knowledge.conftest import KNOWLEDGE_ENV, KnowledgeApi


async def test_a_configured_endpoint_embeds_documents_and_queries(tmp_path: Path) -> None:
    async with start_simulator() as sim:
        env = {
            **KNOWLEDGE_ENV,
            "KIBITZ_KNOWLEDGE_EMBEDDINGS_BASE_URL": sim.openai_base_url,
            "KIBITZ_KNOWLEDGE_EMBEDDINGS_API_KEY": "sk-embeddings-test",
            "KIBITZ_KNOWLEDGE_EMBEDDINGS_MODEL": "text-embedding-3-small",
        }
        async with start_stack(
            ["auth", "tenants", "knowledge"], data_dir=tmp_path, env=env
        ) as stack:
            knowledge = KnowledgeApi(stack)
            owner = await knowledge.user()
            collection = await knowledge.collection(owner)
            fruit = await knowledge.add_text(owner, collection["id"], "Fruit", "red apples grow")
            taxes = await knowledge.add_text(owner, collection["id"], "Taxes", "tax forms due")
            for document in (fruit, taxes):
                assert (await knowledge.settled(owner, document["id"]))["status"] == "indexed"
            hits = (await knowledge.search(owner, "apples", [collection["id"]])).json()["items"]
            assert hits[0]["document_id"] == fruit["id"]

            calls = [r for r in sim.requests if r["api"] == "openai-embeddings"]
            assert calls and all(r["outcome"] == "completed" for r in calls)
            runtime = stack.running.apps["knowledge"].state.knowledge
            names = [c.name for c in (await runtime.vectors.client.get_collections()).collections]
            assert names == ["kibitz_chunks_openai_text_embedding_3_small_64"]

            sim.queue_fault("500", times=10)
            broken = await knowledge.add_text(owner, collection["id"], "Later", "more text")
            failed = await knowledge.settled(owner, broken["id"])
            assert failed["status"] == "failed" and "Embedding failed" in failed["error"]
            assert "sk-embeddings-test" not in failed["error"]


async def test_the_local_model_puts_paraphrases_closer_than_unrelated_text() -> None:
    model = LocalEmbedder()
    try:
        question = await model.embed_query("How do I reset my password?")
        close, far = await model.embed_documents(
            ["Steps to recover account access when you forgot your login", "Lunch is at noon"]
        )
    finally:
        await model.aclose()

    def cosine(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert len(question) == 384
    assert cosine(question, close) > 0.4 > cosine(question, far)
