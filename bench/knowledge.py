"""Knowledge: retrieval quality, ingest throughput, search latency, and what retrieval adds to the
time to first token of a reply.

    flock /tmp/kibitz-cpu.lock .venv/bin/python bench/knowledge.py [--ingest-chunks 256]
        [--search-points 1000,10000,100000] [--replies 40]

1. Quality on the labelled set the tests ship (tests/fixtures/knowledge_labelled.json: an
   imaginary handbook, questions that paraphrase it): hit@5 and MRR (document level) for the
   local model (dense), BM25 keyword-only, and a hybrid of both (reciprocal rank fusion).
2. Ingest: chunks/s through the indexing path (chunking, the local model on one thread, upsert
   into Qdrant's embedded mode persisted on disk, as all-in-one runs it).
3. Search: p50/p99 of one search (query embedding + filtered Qdrant query) in embedded mode with
   N points spread over 100 tenants (synthetic unit vectors fill the collection; the queried
   tenant's points are real chunks).
4. Replies: time to first token of `POST /agents/respond` (streamed, the simulator as OpenAI) for
   the same agent with and without a knowledge collection, interleaved in one run, at c=1 and
   c=16. Target: at most 20 ms added at p50 at c=1.

Hold the CPU lock while it runs (the machine is shared).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
from qdrant_client import AsyncQdrantClient

from kibitz.services.knowledge.ingest.chunking import chunk_text
from kibitz.services.knowledge.retrieval.embeddings import LocalEmbedder
from kibitz.services.knowledge.retrieval.vectors import ChunkPoint, VectorStore, collection_name

ROOT = Path(__file__).resolve().parents[1]
LABELLED = ROOT / "tests" / "fixtures" / "knowledge_labelled.json"
PASSWORD = "correct horse battery staple"
CHUNK_CHARS, OVERLAP_CHARS = 900, 150


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


# --- 1. quality -------------------------------------------------------------------------------


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


class Bm25:
    """Okapi BM25 (k1 1.5, b 0.75) over chunks: the keyword-only baseline."""

    def __init__(self, texts: list[str]) -> None:
        self.docs = [Counter(words(text)) for text in texts]
        self.lengths = [sum(doc.values()) for doc in self.docs]
        self.average = sum(self.lengths) / len(self.lengths)
        frequency: Counter[str] = Counter()
        for doc in self.docs:
            frequency.update(doc.keys())
        total = len(self.docs)
        self.idf = {w: math.log(1 + (total - n + 0.5) / (n + 0.5)) for w, n in frequency.items()}

    def rank(self, query: str) -> list[int]:
        terms = words(query)
        scores = []
        for index, doc in enumerate(self.docs):
            norm = 1.5 * (1 - 0.75 + 0.75 * self.lengths[index] / self.average)
            score = sum(
                self.idf.get(t, 0.0) * doc[t] * 2.5 / (doc[t] + norm) for t in terms if t in doc
            )
            scores.append(score)
        return sorted(range(len(scores)), key=lambda i: -scores[i])


def document_ranks(chunk_order: list[int], chunk_titles: list[str], expected: str) -> int | None:
    titles = list(dict.fromkeys(chunk_titles[i] for i in chunk_order))
    return titles.index(expected) + 1 if expected in titles else None


def summarise(ranks: list[int | None]) -> tuple[float, float]:
    hit5 = sum(1 for r in ranks if r is not None and r <= 5) / len(ranks)
    mrr = sum(1 / r for r in ranks if r is not None) / len(ranks)
    return hit5, mrr


async def quality(model: LocalEmbedder) -> None:
    labelled = json.loads(LABELLED.read_text())
    chunks: list[str] = []
    titles: list[str] = []
    for document in labelled["documents"]:
        for piece in chunk_text(
            document["text"], max_chars=CHUNK_CHARS, overlap_chars=OVERLAP_CHARS
        ):
            chunks.append(piece)
            titles.append(document["title"])
    vectors = np.array(
        await model.embed_documents([f"{t}\n{c}" for t, c in zip(titles, chunks, strict=True)])
    )
    bm25 = Bm25([f"{t}\n{c}" for t, c in zip(titles, chunks, strict=True)])
    results: dict[str, list[int | None]] = {"dense": [], "keyword": [], "hybrid": []}
    for item in labelled["questions"]:
        query = np.array(await model.embed_query(item["question"]))
        dense = list(np.argsort(-(vectors @ query)))
        keyword = bm25.rank(item["question"])
        # Reciprocal rank fusion (k = 60) of the two top-20 lists.
        fused: Counter[int] = Counter()
        for order in (dense[:20], keyword[:20]):
            for position, index in enumerate(order):
                fused[int(index)] += 1 / (60 + position + 1)
        hybrid = [index for index, _ in fused.most_common()]
        for name, order in (("dense", dense), ("keyword", keyword), ("hybrid", hybrid)):
            results[name].append(document_ranks([int(i) for i in order], titles, item["document"]))
    print(
        f"quality: {len(labelled['documents'])} documents ({len(chunks)} chunks), "
        f"{len(labelled['questions'])} paraphrased questions"
    )
    for name, ranks in results.items():
        hit5, mrr = summarise(ranks)
        print(f"  {name:8s} hit@5 {hit5:.3f}  MRR {mrr:.3f}")


# --- 2. ingest, 3. search ---------------------------------------------------------------------


def synthetic_chunks(count: int) -> list[str]:
    """`count` chunk-sized texts made from the labelled handbook's sentences (~200 word pieces)."""
    labelled = json.loads(LABELLED.read_text())
    sentences = [
        s.strip()
        for d in labelled["documents"]
        for s in re.split(r"(?<=[.!?])\s+", d["text"].replace("#", ""))
        if s.strip()
    ]
    texts = []
    for index in range(count):
        picked = [sentences[(index * 7 + k * 13) % len(sentences)] for k in range(6)]
        texts.append(" ".join(picked)[:CHUNK_CHARS])
    return texts


async def ingest(model: LocalEmbedder, count: int) -> None:
    texts = synthetic_chunks(count)
    tenant, collection = uuid.uuid4(), uuid.uuid4()
    with tempfile.TemporaryDirectory() as directory:
        store = VectorStore.embedded_under(Path(directory))
        name = collection_name(model.model_id, 384)
        await store.ensure_collection(name, 384)
        embed_seconds = store_seconds = 0.0
        started = time.perf_counter()
        for start in range(0, count, 16):
            batch = texts[start : start + 16]
            began = time.perf_counter()
            vectors = await model.embed_documents(batch)
            embed_seconds += time.perf_counter() - began
            began = time.perf_counter()
            await store.upsert(
                name,
                [
                    ChunkPoint(uuid.uuid4(), tenant, collection, uuid.uuid4(), "t", text, vector)
                    for text, vector in zip(batch, vectors, strict=True)
                ],
            )
            store_seconds += time.perf_counter() - began
        total = time.perf_counter() - started
        await store.aclose()
    print(
        f"ingest: {count} chunks in {total:.1f} s = {count / total:.1f} chunks/s "
        f"(embedding {count / embed_seconds:.1f}/s, Qdrant embedded upsert "
        f"{count / store_seconds:.0f}/s)"
    )


async def search_latency(model: LocalEmbedder, points: int, queries: int) -> None:
    store = VectorStore(AsyncQdrantClient(location=":memory:"), embedded=True)
    name = collection_name(model.model_id, 384)
    await store.ensure_collection(name, 384)
    tenants = [uuid.uuid4() for _ in range(100)]
    collections = {tenant: uuid.uuid4() for tenant in tenants}
    mine = tenants[0]
    real = synthetic_chunks(min(200, points // 100 or 1))
    real_vectors = await model.embed_documents(real)
    rng = np.random.default_rng(7)
    batch: list[ChunkPoint] = [
        ChunkPoint(uuid.uuid4(), mine, collections[mine], uuid.uuid4(), "t", text, vector)
        for text, vector in zip(real, real_vectors, strict=True)
    ]
    filled = len(batch)
    while filled < points:
        size = min(2000, points - filled)
        noise = rng.standard_normal((size, 384)).astype(np.float32)
        noise /= np.linalg.norm(noise, axis=1, keepdims=True)
        for row in noise:
            tenant = tenants[1 + (filled % 99)]
            batch.append(
                ChunkPoint(
                    uuid.uuid4(), tenant, collections[tenant], uuid.uuid4(), "t", "x", row.tolist()
                )
            )
            filled += 1
        await store.upsert(name, batch)
        batch = []
    await store.upsert(name, batch)
    questions = [q["question"] for q in json.loads(LABELLED.read_text())["questions"]]
    timings = []
    for index in range(queries):
        began = time.perf_counter()
        vector = await model.embed_query(questions[index % len(questions)])
        hits = await store.search(
            name, vector, tenant_id=mine, collection_ids=[collections[mine]], limit=5
        )
        timings.append(time.perf_counter() - began)
        assert hits and all(hit.collection_id == collections[mine] for hit in hits)
    await store.aclose()
    print(
        f"search: {points:>7} points (100 tenants) p50 {percentile(timings, 0.5) * 1000:7.1f} ms"
        f"  p99 {percentile(timings, 0.99) * 1000:7.1f} ms  ({queries} queries)"
    )


# --- 4. replies -----------------------------------------------------------------------------


def serve_stack(data_dir: str, sim_url: str) -> None:
    """Child process: auth, tenants, knowledge, agents all-in-one, as `kibitz up` runs them
    (agents and knowledge in processes of their own); prints their URLs as one JSON line."""
    from pydantic import SecretStr

    from kibitz.kit.observability import configure_logging
    from kibitz.kit.settings import PlatformSettings
    from kibitz.runtime.server import run_all_in_one, tune_garbage_collection

    tune_garbage_collection()
    os.environ.update(
        {
            "KIBITZ_AGENTS_OPENAI_API_KEY": "sk-bench",
            "KIBITZ_AGENTS_OPENAI_BASE_URL": f"{sim_url}/v1",
            "KIBITZ_LOG_LEVEL": "WARNING",
        }
    )

    async def main() -> None:
        settings = PlatformSettings(
            data_dir=Path(data_dir),
            migrate_on_start=True,
            internal_token=SecretStr("bench-internal-token"),
            log_level="WARNING",
            own_processes=["agents", "knowledge"],
        )
        configure_logging(level="WARNING", json=True)
        modules = ["auth", "tenants", "knowledge", "agents"]
        async with run_all_in_one(settings=settings, port=0, modules=modules) as stack:
            print(json.dumps(stack.urls), flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

    asyncio.run(main())


async def replies(urls: dict[str, str], total: int) -> None:
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(timeout=60, limits=limits, trust_env=False) as http:
        account = (
            await http.post(
                f"{urls['auth']}/auth/register",
                json={"email": f"bench-{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD},
            )
        ).json()
        headers = {"Authorization": f"Bearer {account['access_token']}"}
        await http.post(
            f"{urls['tenants']}/tenants/subscribe", json={"plan": "premium"}, headers=headers
        )
        knowledge = f"{urls['knowledge']}/knowledge"
        collection = (
            await http.post(f"{knowledge}/collections", json={"name": "Handbook"}, headers=headers)
        ).json()["id"]
        labelled = json.loads(LABELLED.read_text())
        ids = []
        for document in labelled["documents"]:
            added = await http.post(
                f"{knowledge}/collections/{collection}/documents",
                json={"title": document["title"], "text": document["text"]},
                headers=headers,
            )
            ids.append(added.json()["id"])
        for document_id in ids:
            status = "pending"
            while status != "indexed":
                answer = await http.get(f"{knowledge}/documents/{document_id}", headers=headers)
                status = answer.json()["status"]
                await asyncio.sleep(0.1)
        agents = {}
        for label, collections in (("plain", []), ("knowledge", [collection])):
            created = await http.post(
                f"{urls['agents']}/agents/create",
                json={
                    "name": label,
                    "llm_provider": "openai",
                    "model": "gpt-4o-mini",
                    "knowledge_collection_ids": collections,
                },
                headers=headers,
            )
            agents[label] = created.json()["id"]
        questions = [q["question"] for q in labelled["questions"]]

        async def first_token(label: str, index: int) -> float:
            body = {
                "agent_id": agents[label],
                "stream": True,
                "messages": [{"role": "user", "content": questions[index % len(questions)]}],
            }
            began = time.perf_counter()
            ttft = None
            async with http.stream(
                "POST", f"{urls['agents']}/agents/respond", json=body, headers=headers
            ) as response:
                async for line in response.aiter_lines():  # read to the end: `done` included
                    if ttft is None and line.startswith("event: delta"):
                        ttft = time.perf_counter() - began
            if ttft is None:
                raise RuntimeError(f"no token (status {response.status_code})")
            return ttft

        for label in agents:  # warm both paths
            await first_token(label, 0)
        for concurrency in (1, 16):
            samples: dict[str, list[float]] = {"plain": [], "knowledge": []}
            count = total if concurrency == 1 else max(total, 4 * concurrency)

            async def one(label: str, index: int, into: dict[str, list[float]] = samples) -> None:
                into[label].append(await first_token(label, index))

            labels = ("plain", "knowledge")
            for start in range(0, 2 * count, concurrency):
                # Interleaved: every round asks both agents, alternating who goes first.
                await asyncio.gather(
                    *(one(labels[(start + k) % 2], start + k) for k in range(concurrency))
                )
            plain = statistics.median(samples["plain"]) * 1000
            rag = statistics.median(samples["knowledge"]) * 1000
            print(
                f"replies c={concurrency:<2}: TTFT p50 without {plain:6.1f} ms, with knowledge "
                f"{rag:6.1f} ms (added {rag - plain:+.1f} ms); p99 without "
                f"{percentile(samples['plain'], 0.99) * 1000:.1f}, with "
                f"{percentile(samples['knowledge'], 0.99) * 1000:.1f} ms "
                f"({len(samples['plain'])}+{len(samples['knowledge'])} replies)"
            )


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_replies(total: int) -> None:
    port = free_port()
    simulator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kibitz.cli",
            "simulate-llm",
            "--port",
            str(port),
            "--ttft-ms",
            "20",
            "--tokens",
            "8",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sim_url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data_dir:
        stack = subprocess.Popen(
            [sys.executable, __file__, "--serve", data_dir, sim_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert stack.stdout is not None
            urls = json.loads(stack.stdout.readline())
            asyncio.run(replies(urls, total))
        finally:
            assert stack.stdin is not None
            stack.stdin.close()
            stack.wait(timeout=30)
            simulator.terminate()
            simulator.wait(timeout=10)


async def offline(args: argparse.Namespace) -> None:
    model = LocalEmbedder()
    await model.load()
    try:
        await quality(model)
        await ingest(model, args.ingest_chunks)
        for points in args.search_points:
            await search_latency(model, points, queries=30 if points <= 10_000 else 5)
    finally:
        await model.aclose()


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve_stack(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ingest-chunks", type=int, default=256)
    parser.add_argument(
        "--search-points",
        type=lambda raw: [int(p) for p in raw.split(",")],
        default=[1_000, 10_000, 100_000],
    )
    parser.add_argument("--replies", type=int, default=40)
    parser.add_argument("--skip-replies", action="store_true")
    args = parser.parse_args()
    asyncio.run(offline(args))
    if not args.skip_replies:
        run_replies(args.replies)


if __name__ == "__main__":
    main()
