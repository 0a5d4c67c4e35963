"""Retrieval quality with the real local model, through the API: the shipped labelled set (an
imaginary handbook and questions that paraphrase it) must find the right document in the top 5."""

from __future__ import annotations

import json
from pathlib import Path

from tests.services.knowledge.conftest import KnowledgeApi

LABELLED = Path(__file__).parents[2] / "fixtures" / "knowledge_labelled.json"


async def test_paraphrased_questions_find_their_document_in_the_top_five(
    knowledge: KnowledgeApi,
) -> None:
    labelled = json.loads(LABELLED.read_text())
    owner = await knowledge.user()
    collection_id = (await knowledge.collection(owner))["id"]
    ids = {}
    for document in labelled["documents"]:
        added = await knowledge.add_text(owner, collection_id, document["title"], document["text"])
        ids[added["id"]] = document["title"]
    for document_id in ids:
        assert (await knowledge.settled(owner, document_id))["status"] == "indexed"

    ranks = []
    for item in labelled["questions"]:
        response = await knowledge.search(owner, item["question"], [collection_id], top_k=10)
        titles = list(dict.fromkeys(ids[hit["document_id"]] for hit in response.json()["items"]))
        ranks.append(titles.index(item["document"]) + 1 if item["document"] in titles else None)
    hit_at_5 = sum(1 for rank in ranks if rank is not None and rank <= 5) / len(ranks)
    mrr = sum(1 / rank for rank in ranks if rank is not None) / len(ranks)
    print(f"hit@5={hit_at_5:.3f} mrr={mrr:.3f}")
    assert hit_at_5 >= 0.9, ranks
    assert mrr >= 0.7, ranks
