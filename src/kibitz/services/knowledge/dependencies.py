"""Request-scoped dependencies: the runtime, the caller, the plan gate, visible-row lookups."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request

from kibitz.kit.db import SessionDep
from kibitz.kit.plans import TenantPlan
from kibitz.kit.security import CurrentPrincipal, bearer_token
from kibitz.services.knowledge import service
from kibitz.services.knowledge.models import Collection, Document
from kibitz.services.knowledge.service import Caller, KnowledgeRuntime


async def knowledge_runtime(request: Request) -> KnowledgeRuntime:
    """The service's runtime (model, Qdrant, worker, settings)."""
    runtime: KnowledgeRuntime = request.app.state.knowledge
    return runtime


RuntimeDep = Annotated[KnowledgeRuntime, Depends(knowledge_runtime)]


async def _caller(principal: CurrentPrincipal, request: Request) -> Caller:
    return Caller.of(principal, bearer_token(request))


CallerDep = Annotated[Caller, Depends(_caller)]


async def _plan_with_knowledge(caller: CallerDep, runtime: RuntimeDep) -> TenantPlan:
    return await service.require_knowledge(runtime, caller)


# Every public route depends on this: 403 `feature-not-in-plan` before anything else happens.
KnowledgePlanDep = Annotated[TenantPlan, Depends(_plan_with_knowledge)]


async def _visible_collection(
    collection_id: uuid.UUID, caller: CallerDep, _: KnowledgePlanDep, session: SessionDep
) -> Collection:
    return await service.visible_collection(session, caller=caller, collection_id=collection_id)


VisibleCollection = Annotated[Collection, Depends(_visible_collection)]


async def _visible_document(
    document_id: uuid.UUID, caller: CallerDep, _: KnowledgePlanDep, session: SessionDep
) -> tuple[Document, Collection]:
    return await service.visible_document(session, caller=caller, document_id=document_id)


VisibleDocument = Annotated[tuple[Document, Collection], Depends(_visible_document)]
