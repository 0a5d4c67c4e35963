"""The knowledge API end to end: collections, uploads indexed in the background, search with the
real local model and Qdrant's embedded mode, bad input, isolation, deletion, plan gating."""

from __future__ import annotations

import json
import uuid
from importlib import resources

import pytest

from tests.fixtures.documents import pdf_with_text
from tests.fixtures.stack import start_stack
from tests.services.knowledge.conftest import KNOWLEDGE_ENV, KnowledgeApi, assert_problem

REFUNDS = (
    "# Billing\n\n## Refunds\n\nCustomers on an annual plan may ask for their money back within "
    "thirty days of purchase. After that, unused months are credited to the account instead.\n\n"
    "## Invoices\n\nInvoices are emailed on the first day of every month and can be downloaded "
    "from the billing page."
)
OFFICE = (
    "The Lisbon office is open from nine to six. Visitors sign in at the front desk and wear a "
    "badge. Parking is available in the garage under the building."
)


async def test_a_text_document_is_indexed_and_found_by_a_paraphrase(
    knowledge: KnowledgeApi,
) -> None:
    owner = await knowledge.user()
    collection = await knowledge.collection(owner, description="Company policies")
    assert collection["scope"] == "private" and collection["documents"] == 0
    pending = await knowledge.add_text(owner, collection["id"], "Billing policy", REFUNDS)
    assert pending["status"] in ("pending", "indexing") and pending["chunks"] == 0
    other = await knowledge.add_text(owner, collection["id"], "Office guide", OFFICE)

    indexed = await knowledge.settled(owner, pending["id"])
    assert indexed["status"] == "indexed" and indexed["chunks"] >= 2, indexed
    assert (await knowledge.settled(owner, other["id"]))["status"] == "indexed"

    response = await knowledge.search(
        owner, "can I get reimbursed for a yearly subscription?", [collection["id"]]
    )
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert items and items[0]["document_id"] == pending["id"]
    assert items[0]["title"] == "Billing policy" and "thirty days" in items[0]["text"]
    assert items[0]["score"] >= items[-1]["score"]
    assert set(items[0]) == {"document_id", "collection_id", "title", "chunk_id", "text", "score"}

    listed = await knowledge.call("GET", f"/collections/{collection['id']}/documents", owner)
    assert [d["id"] for d in listed.json()["items"]] == [pending["id"], other["id"]]
    read = await knowledge.call("GET", f"/collections/{collection['id']}", owner)
    assert read.json()["documents"] == 2


async def test_whether_qdrant_answers_is_a_gauge_on_the_metrics(knowledge: KnowledgeApi) -> None:
    scraped = (await knowledge.http.get(f"{knowledge.url}/metrics")).text
    assert 'kibitz_dependency_up{dependency="qdrant",service="knowledge"} 1.0' in scraped


async def test_markdown_html_and_pdf_files_are_parsed(knowledge: KnowledgeApi) -> None:
    owner = await knowledge.user()
    collection = await knowledge.collection(owner)
    html = (
        b"<html><head><style>.x{color:red}</style><script>var secret='tracking';</script></head>"
        b"<body><h1>Espresso machine</h1><p>Descale the boiler every two months with citric "
        b"acid.</p></body></html>"
    )
    pdf = pdf_with_text(["Fire safety", "Assemble at the green gate when the alarm sounds."])
    uploads = {
        "notes.md": (b"# Plants\n\nWater the ficus on Mondays.", "text/markdown"),
        "machine.html": (html, "text/html"),
        "safety.pdf": (pdf, "application/pdf"),
    }
    ids = {}
    for filename, (content, content_type) in uploads.items():
        response = await knowledge.upload(owner, collection["id"], filename, content, content_type)
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["title"] == filename and body["size_bytes"] == len(content)
        ids[filename] = body["id"]
    for filename, document_id in ids.items():
        settled = await knowledge.settled(owner, document_id)
        assert settled["status"] == "indexed", (filename, settled)

    async def top(query: str) -> dict[str, object]:
        response = await knowledge.search(owner, query, [collection["id"]], top_k=1)
        return dict(response.json()["items"][0])

    assert (await top("where do we gather during a fire alarm"))["document_id"] == ids["safety.pdf"]
    coffee = await top("how to clean limescale from the coffee maker")
    assert coffee["document_id"] == ids["machine.html"]
    assert "tracking" not in str(coffee["text"]) and "color" not in str(coffee["text"])


async def test_bad_uploads_are_refused_with_a_reason(knowledge: KnowledgeApi) -> None:
    owner = await knowledge.user()
    collection_id = (await knowledge.collection(owner))["id"]
    wrong_type = await knowledge.upload(owner, collection_id, "photo.png", b"\x89PNG....")
    assert assert_problem(wrong_type, 422)["type"].endswith("/unsupported-document")
    empty = await knowledge.upload(owner, collection_id, "empty.txt", b"", "text/plain")
    assert "empty" in assert_problem(empty, 422)["detail"]
    not_a_pdf = await knowledge.upload(
        owner, collection_id, "fake.pdf", b"hello", "application/pdf"
    )
    assert_problem(not_a_pdf, 422)
    binary = await knowledge.upload(owner, collection_id, "x.txt", b"ab\x00cd", "text/plain")
    assert_problem(binary, 422)
    too_big = await knowledge.upload(owner, collection_id, "big.txt", b"a " * 105_000)
    problem = assert_problem(too_big, 413)
    assert problem["limit"] == "max_upload_bytes" and problem["allowed"] == 200_000
    # Beyond the document and its multipart framing, the route's body limit refuses first.
    far_too_big = await knowledge.upload(owner, collection_id, "big.txt", b"a " * 150_000)
    assert "at most 265536 bytes" in assert_problem(far_too_big, 413)["detail"]
    a_form = await knowledge.call(
        "POST", f"/collections/{collection_id}/documents", owner, data={"title": "x"}
    )
    assert_problem(a_form, 415)
    no_file = await knowledge.call(
        "POST", f"/collections/{collection_id}/documents", owner, files={"title": (None, "x")}
    )
    assert_problem(no_file, 422)
    bad_json = await knowledge.call(
        "POST", f"/collections/{collection_id}/documents", owner, json={"title": "", "text": 3}
    )
    assert {e["field"] for e in assert_problem(bad_json, 422)["errors"]} >= {"title", "text"}
    assert_problem(await knowledge.call("POST", "/collections", owner, json={"name": ""}), 422)
    scope = await knowledge.call("POST", "/collections", owner, json={"name": "x", "scope": "all"})
    assert_problem(scope, 422)
    search = await knowledge.call(
        "POST", "/search", owner, json={"query": "x", "collection_ids": [], "top_k": 50}
    )
    assert {e["field"] for e in assert_problem(search, 422)["errors"]} == {
        "collection_ids",
        "top_k",
    }

    corrupt = pdf_with_text(["fine"])[:60] + b"\x00garbage" * 20
    response = await knowledge.upload(owner, collection_id, "broken.pdf", corrupt)
    assert response.status_code == 202, response.text
    failed = await knowledge.settled(owner, response.json()["id"])
    assert failed["status"] == "failed" and "PDF" in failed["error"]
    assert await knowledge.point_count(owner.tenant_id, document_id=failed["id"]) == 0


async def test_another_tenants_or_users_collection_is_not_found_on_every_route(
    knowledge: KnowledgeApi,
) -> None:
    owner = await knowledge.user()
    private = await knowledge.collection(owner, name="Private")
    shared = await knowledge.collection(owner, name="Shared", scope="tenant")
    secret = await knowledge.add_text(owner, private["id"], "Salaries", "The CEO earns a lot.")
    public = await knowledge.add_text(owner, shared["id"], "Lunch", "Lunch is served at noon.")
    for document in (secret, public):
        assert (await knowledge.settled(owner, document["id"]))["status"] == "indexed"

    stranger = await knowledge.user()  # another tenant, same Qdrant collection
    stranger_collection = await knowledge.collection(stranger)
    mine = await knowledge.add_text(stranger, stranger_collection["id"], "Mine", "How much?")
    await knowledge.settled(stranger, mine["id"])
    colleague = await knowledge.colleague(owner)  # same tenant, not the owner of `private`

    for outsider, hidden in ((stranger, [private, shared]), (colleague, [private])):
        for collection in hidden:
            cid = collection["id"]
            for method, path, kwargs in (
                ("GET", f"/collections/{cid}", {}),
                ("PATCH", f"/collections/{cid}", {"json": {"name": "mine now"}}),
                ("DELETE", f"/collections/{cid}", {}),
                ("GET", f"/collections/{cid}/documents", {}),
                ("POST", f"/collections/{cid}/documents", {"json": {"title": "t", "text": "x"}}),
            ):
                response = await knowledge.call(method, path, outsider, **kwargs)
                assert_problem(response, 404)
            assert_problem(await knowledge.search(outsider, "salary", [cid]), 404)
        listed = await knowledge.call("GET", "/collections", outsider)
        assert not {c["id"] for c in listed.json()["items"]} & {c["id"] for c in hidden}
    for outsider in (stranger, colleague):
        for method in ("GET", "DELETE"):
            response = await knowledge.call(method, f"/documents/{secret['id']}", outsider)
            assert_problem(response, 404)
    assert_problem(await knowledge.call("GET", f"/documents/{public['id']}", stranger), 404)

    # Points of both tenants share one Qdrant collection; the filter keeps them apart.
    hits = (await knowledge.search(stranger, "CEO salary", [stranger_collection["id"]])).json()
    assert {hit["document_id"] for hit in hits["items"]} == {mine["id"]}
    # A colleague reads the shared collection, not the private one, and cannot change it.
    found = (await knowledge.search(colleague, "when is lunch", [shared["id"]])).json()["items"]
    assert [hit["document_id"] for hit in found] == [public["id"]]
    patch = await knowledge.call(
        "PATCH", f"/collections/{shared['id']}", colleague, json={"name": "x"}
    )
    assert_problem(patch, 403)
    assert (await knowledge.call("GET", f"/documents/{public['id']}", colleague)).status_code == 200
    assert_problem(await knowledge.call("GET", f"/documents/{uuid.uuid4()}", owner), 404)


async def test_deleting_a_document_or_collection_removes_its_points(
    knowledge: KnowledgeApi,
) -> None:
    owner = await knowledge.user()
    collection = await knowledge.collection(owner)
    first = await knowledge.add_text(owner, collection["id"], "One", REFUNDS)
    second = await knowledge.add_text(owner, collection["id"], "Two", OFFICE)
    for document in (first, second):
        await knowledge.settled(owner, document["id"])
    tenant = owner.tenant_id
    assert await knowledge.point_count(tenant, document_id=first["id"]) >= 2

    assert (await knowledge.call("DELETE", f"/documents/{first['id']}", owner)).status_code == 204
    assert await knowledge.point_count(tenant, document_id=first["id"]) == 0
    assert await knowledge.point_count(tenant, document_id=second["id"]) >= 1
    assert_problem(await knowledge.call("GET", f"/documents/{first['id']}", owner), 404)
    hits = (await knowledge.search(owner, "refund annual plan", [collection["id"]])).json()
    assert {hit["document_id"] for hit in hits["items"]} == {second["id"]}

    deleted = await knowledge.call("DELETE", f"/collections/{collection['id']}", owner)
    assert deleted.status_code == 204
    assert await knowledge.point_count(tenant) == 0
    assert_problem(await knowledge.call("GET", f"/documents/{second['id']}", owner), 404)


async def test_the_basic_plan_has_no_knowledge_until_the_tenant_upgrades(
    knowledge: KnowledgeApi,
) -> None:
    owner = await knowledge.user(plan="basic")
    for method, path in (
        ("GET", "/collections"),
        ("POST", "/collections"),
        ("GET", f"/collections/{uuid.uuid4()}"),
        ("GET", f"/documents/{uuid.uuid4()}"),
        ("POST", "/search"),
    ):
        body = {"name": "x"} if path == "/collections" else None
        if path == "/search":
            body = {"query": "x", "collection_ids": [str(uuid.uuid4())]}
        problem = assert_problem(await knowledge.call(method, path, owner, json=body), 403)
        assert problem["type"].endswith("/feature-not-in-plan")
        assert problem["feature"] == "knowledge" and problem["plan"] == "basic"
        assert problem["upgrade_to"] == "premium"

    await knowledge.subscribe(owner, "premium")
    collection = await knowledge.collection(owner)
    assert collection["name"] == "Handbook"


async def test_the_plan_bounds_a_tenants_documents_and_bytes(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    catalogue = json.loads(
        resources.files("kibitz.services.tenants").joinpath("plans.json").read_text("utf-8")
    )
    for plan in catalogue["plans"]:
        plan["limits"].update(knowledge_documents=2, knowledge_bytes=1_000)
    data_dir = tmp_path_factory.mktemp("knowledge-limits")
    plans_file = data_dir / "plans.json"
    plans_file.write_text(json.dumps(catalogue))
    env = {**KNOWLEDGE_ENV, "KIBITZ_TENANTS_PLANS_FILE": str(plans_file)}
    async with start_stack(["auth", "tenants", "knowledge"], data_dir=data_dir, env=env) as stack:
        knowledge = KnowledgeApi(stack)
        owner = await knowledge.user()
        collection_id = (await knowledge.collection(owner))["id"]
        await knowledge.add_text(owner, collection_id, "One", "a" * 600)
        too_many_bytes = await knowledge.call(
            "POST",
            f"/collections/{collection_id}/documents",
            owner,
            json={"title": "Two", "text": "b" * 500},
        )
        problem = assert_problem(too_many_bytes, 413)
        assert problem["limit"] == "knowledge_bytes" and "400 are left" in problem["detail"]
        await knowledge.add_text(owner, collection_id, "Two", "b" * 300)
        third = await knowledge.call(
            "POST",
            f"/collections/{collection_id}/documents",
            owner,
            json={"title": "Three", "text": "c"},
        )
        problem = assert_problem(third, 403)
        assert problem["limit"] == "knowledge_documents" and problem["allowed"] == 2
