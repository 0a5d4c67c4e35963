"""Routes of the knowledge service: thin handlers over `service`."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.responses import Response

from kibitz.kit.db import SessionDep
from kibitz.kit.errors import UnsupportedMediaType, problem_responses, validation_problem
from kibitz.kit.security import ServiceCaller
from kibitz.services.knowledge import service
from kibitz.services.knowledge.dependencies import (
    CallerDep,
    KnowledgePlanDep,
    RuntimeDep,
    VisibleCollection,
    VisibleDocument,
)
from kibitz.services.knowledge.errors import UnsupportedDocument, UploadTooLarge
from kibitz.services.knowledge.schemas import (
    CollectionCreate,
    CollectionList,
    CollectionRead,
    CollectionUpdate,
    DocumentList,
    DocumentRead,
    InternalSearchRequest,
    SearchRequest,
    SearchResult,
    TextDocumentCreate,
    VisibleCollections,
    VisibleCollectionsRequest,
)

router = APIRouter(prefix="/knowledge", tags=["knowledge"])
# Routes whose bodies may be as large as a document (the module includes it with the limit
# that `max_upload_bytes` sets).
uploads = APIRouter(prefix="/knowledge", tags=["knowledge"])
internal = APIRouter(
    prefix="/knowledge/internal", tags=["knowledge (internal)"], dependencies=[ServiceCaller]
)
# Multipart framing around the file: headers, boundary, an optional title field.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
_UPLOAD_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "title": {"type": "string", "maxLength": 300},
                    },
                }
            },
            "application/json": {"schema": TextDocumentCreate.model_json_schema()},
        },
    }
}


@router.post(
    "/collections",
    status_code=status.HTTP_201_CREATED,
    response_model=CollectionRead,
    responses=problem_responses(401, 403, 422),
    summary="Create a collection",
)
async def create_collection(
    body: CollectionCreate, caller: CallerDep, _: KnowledgePlanDep, session: SessionDep
) -> dict[str, Any]:
    """A new collection, private to the caller or shared with the tenant."""
    collection = await service.create_collection(session, caller=caller, data=body)
    return service.collection_read(collection, 0)


@router.get(
    "/collections",
    response_model=CollectionList,
    responses=problem_responses(401, 403, 422),
    summary="My and my tenant's collections",
)
async def list_collections(
    caller: CallerDep,
    _: KnowledgePlanDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """The caller's collections and the tenant's shared ones, oldest first."""
    items, next_cursor = await service.list_collections(
        session, caller=caller, limit=limit, cursor=cursor
    )
    return {"items": items, "next_cursor": next_cursor}


@router.get(
    "/collections/{collection_id}",
    response_model=CollectionRead,
    responses=problem_responses(401, 403, 404, 422),
    summary="One collection",
)
async def read_collection(collection: VisibleCollection, session: SessionDep) -> dict[str, Any]:
    """One collection the caller may read (404 otherwise)."""
    return service.collection_read(collection, await service.document_count(session, collection))


@router.patch(
    "/collections/{collection_id}",
    response_model=CollectionRead,
    responses=problem_responses(401, 403, 404, 422),
    summary="Change a collection",
)
async def update_collection(
    body: CollectionUpdate, collection: VisibleCollection, caller: CallerDep, session: SessionDep
) -> dict[str, Any]:
    """Rename, describe or re-scope a collection (its owner, or a tenant admin if shared)."""
    updated = await service.update_collection(
        session, caller=caller, collection=collection, data=body
    )
    return service.collection_read(updated, await service.document_count(session, updated))


@router.delete(
    "/collections/{collection_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 422),
    summary="Delete a collection",
)
async def delete_collection(
    collection: VisibleCollection, caller: CallerDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """Delete a collection with its documents and their vectors."""
    await service.delete_collection(session, runtime=runtime, caller=caller, collection=collection)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _upload(request: Request, max_bytes: int) -> tuple[str, str | None, str | None, bytes]:
    """(title, filename, declared type, bytes) of a multipart or JSON upload."""
    content_type = request.headers.get("content-type", "").lower()
    declared_length = request.headers.get("content-length", "")
    if declared_length.isdigit() and int(declared_length) > max_bytes + MULTIPART_OVERHEAD_BYTES:
        raise UploadTooLarge(
            f"A document may be at most {max_bytes} bytes.",
            limit="max_upload_bytes",
            allowed=max_bytes,
        )
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=4)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise UnsupportedDocument("Send the document as the multipart field `file`.")
        content = await upload.read(max_bytes + 1)
        if len(content) > max_bytes:
            raise UploadTooLarge(
                f"A document may be at most {max_bytes} bytes.",
                limit="max_upload_bytes",
                allowed=max_bytes,
            )
        filename = upload.filename or None
        title_field = form.get("title")
        title = title_field.strip() if isinstance(title_field, str) and title_field.strip() else ""
        if not title:
            title = (filename or "Untitled").rsplit("/", 1)[-1]
        return title, filename, upload.content_type, content
    if content_type.startswith("application/json"):
        try:
            body = TextDocumentCreate.model_validate_json(await request.body())
        except ValidationError as exc:
            raise validation_problem(exc.errors()) from None
        except json.JSONDecodeError:
            raise UnsupportedDocument("The body is not JSON.") from None
        return body.title, None, "text/plain", body.text.encode()
    raise UnsupportedMediaType("Send multipart/form-data with a `file`, or JSON {title, text}.")


@uploads.post(
    "/collections/{collection_id}/documents",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DocumentRead,
    responses=problem_responses(401, 403, 404, 413, 415, 422),
    summary="Add a document (indexed in the background)",
    openapi_extra=_UPLOAD_DOC,
)
async def add_document(
    request: Request,
    collection: VisibleCollection,
    caller: CallerDep,
    plan: KnowledgePlanDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    """Upload txt, md, html or pdf (multipart `file`) or JSON `{title, text}`; answers 202 with
    the document `pending`, then `indexed` (with `chunks`) or `failed` (with `error`)."""
    title, filename, declared, content = await _upload(request, runtime.settings.max_upload_bytes)
    document = await service.add_document(
        session,
        runtime=runtime,
        caller=caller,
        plan=plan,
        collection=collection,
        title=title,
        filename=filename,
        declared_type=declared,
        content=content,
    )
    read = service.document_read(document)
    await session.commit()  # the job must be visible before the worker is woken
    runtime.worker.wake()
    return read


@router.get(
    "/collections/{collection_id}/documents",
    response_model=DocumentList,
    responses=problem_responses(401, 403, 404, 422),
    summary="A collection's documents",
)
async def list_documents(
    collection: VisibleCollection,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """The collection's documents with their indexing status, oldest first."""
    documents, next_cursor = await service.list_documents(
        session, collection=collection, limit=limit, cursor=cursor
    )
    return {"items": [service.document_read(d) for d in documents], "next_cursor": next_cursor}


@router.get(
    "/documents/{document_id}",
    response_model=DocumentRead,
    responses=problem_responses(401, 403, 404, 422),
    summary="One document",
)
async def read_document(found: VisibleDocument) -> dict[str, Any]:
    """One document and its status (404 unless its collection is the caller's to read)."""
    return service.document_read(found[0])


@router.delete(
    "/documents/{document_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 422),
    summary="Delete a document",
)
async def delete_document(
    found: VisibleDocument, caller: CallerDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """Delete a document and its vectors."""
    document, collection = found
    await service.delete_document(
        session, runtime=runtime, caller=caller, document=document, collection=collection
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/search",
    response_model=SearchResult,
    responses=problem_responses(401, 403, 404, 422, 503),
    summary="Search collections",
)
async def search(
    body: SearchRequest, caller: CallerDep, _: KnowledgePlanDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """The chunks closest to the query in these collections, best first."""
    hits = await service.search(
        runtime=runtime,
        caller=caller,
        query=body.query,
        collection_ids=body.collection_ids,
        top_k=body.top_k,
    )
    return {"items": [service.hit_read(hit) for hit in hits]}


@internal.post(
    "/search",
    response_model=SearchResult,
    responses=problem_responses(403, 404, 422, 503),
    summary="Search on a user's behalf",
)
async def internal_search(body: InternalSearchRequest, runtime: RuntimeDep) -> dict[str, Any]:
    """For agents preparing a reply: the same search, for the user named in the body."""
    caller = service.Caller(tenant_id=body.tenant_id, user_id=body.user_id)
    await service.require_knowledge(runtime, caller)
    hits = await service.search(
        runtime=runtime,
        caller=caller,
        query=body.query,
        collection_ids=body.collection_ids,
        top_k=body.top_k,
    )
    return {"items": [service.hit_read(hit) for hit in hits]}


@internal.post(
    "/collections/visible",
    response_model=VisibleCollections,
    responses=problem_responses(403, 422),
    summary="Which collections a user may read",
)
async def visible_collections(
    body: VisibleCollectionsRequest, session: SessionDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """For agents saving an agent: those of the ids the user may read (403 without the
    feature)."""
    caller = service.Caller(tenant_id=body.tenant_id, user_id=body.user_id)
    await service.require_knowledge(runtime, caller)
    visible = await service.visible_collection_ids(
        session, caller=caller, collection_ids=body.collection_ids
    )
    return {"collection_ids": visible}
