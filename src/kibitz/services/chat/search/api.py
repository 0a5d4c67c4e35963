"""`GET /chat/search`: full-text search over the caller's own messages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from kibitz.kit.errors import problem_responses
from kibitz.kit.security import CurrentPrincipal
from kibitz.services.chat.dependencies import ReadSessionDep
from kibitz.services.chat.search.schemas import SearchPage
from kibitz.services.chat.search.service import search_messages

router = APIRouter(prefix="/chat", tags=["chat"])

# 200 characters: a search box's worth; longer "queries" are pasted documents.
MAX_QUERY_CHARS = 200


@router.get(
    "/search",
    response_model=SearchPage,
    responses=problem_responses(401, 422),
    summary="Search my messages (mine and my agents' replies), best match first",
)
async def search(
    principal: CurrentPrincipal,
    session: ReadSessionDep,
    q: Annotated[
        str,
        Query(
            min_length=1,
            max_length=MAX_QUERY_CHARS,
            description='Words to find (all of them); "quoted words" as a phrase; the last '
            "word also matches longer words.",
        ),
    ],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Finished messages only: a reply still streaming is found once it is done."""
    page = await search_messages(session, principal=principal, q=q, limit=limit, cursor=cursor)
    return Response(page.model_dump_json(), media_type="application/json")
