"""Answering through an agent: the reply prepared and checked (agent, plan, sizes, tools,
knowledge), then streamed from its provider with retries, metrics and a total deadline."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import structlog

from kibitz.kit.errors import ProblemError
from kibitz.kit.jwt import Principal
from kibitz.kit.tracing import model_call_span
from kibitz.services.agents.agent_cache import AgentSnapshot
from kibitz.services.agents.errors import (
    ConversationTooLarge,
    InvalidAgentConfig,
    InvalidToolMessage,
    PlanLimitReached,
    ProviderRateLimited,
    ProviderRejected,
    ProviderTimedOut,
    ProviderUnavailable,
    ToolsNotSupported,
)
from kibitz.services.agents.knowledge import with_sources
from kibitz.services.agents.metrics import (
    LLM_DURATION,
    LLM_ERRORS,
    LLM_RETRIES,
    LLM_TIME_TO_FIRST_TOKEN,
    LLM_TOKENS,
)
from kibitz.services.agents.plans import allows_model, upgrade_that_allows
from kibitz.services.agents.providers.base import (
    CompletionRequest,
    Provider,
    ProviderError,
    StreamEnd,
    StreamItem,
    TextDelta,
    ToolCall,
    ToolSpec,
    Turn,
)
from kibitz.services.agents.providers.provider_set import AgentTarget
from kibitz.services.agents.providers.resilience import stream_with_retries
from kibitz.services.agents.schemas import (
    ConversationMessage,
    RespondRequest,
)
from kibitz.services.agents.service import AgentsRuntime, get_agent

logger = structlog.get_logger("kibitz.agents")


@dataclass
class PreparedReply:
    """An agent resolved and checked, ready to call its provider."""

    agent_id: uuid.UUID
    provider_name: str
    provider: Provider
    request: CompletionRequest
    streamed: bool
    # The knowledge sources the model was given, numbered in this order.
    citations: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    # The tenant's plan, for metrics (which carry the plan, never the tenant id).
    plan: str = "unknown"


def _check_sizes(runtime: AgentsRuntime, body: RespondRequest) -> None:
    settings = runtime.settings
    if len(body.messages) > settings.max_messages:
        raise ConversationTooLarge(f"At most {settings.max_messages} messages per call.")
    if any(len(message.content) > settings.max_message_chars for message in body.messages):
        raise ConversationTooLarge(
            f"A message may hold at most {settings.max_message_chars} characters."
        )
    if sum(len(message.content) for message in body.messages) > settings.max_total_chars:
        raise ConversationTooLarge(
            f"A conversation may hold at most {settings.max_total_chars} characters."
        )


async def prepare_reply(
    *,
    runtime: AgentsRuntime,
    principal: Principal,
    body: RespondRequest,
    temperature: float | None = None,
    max_output_tokens: int | None = None,
) -> PreparedReply:
    """Load the caller's agent (short read transaction), check sizes and plan, pick the adapter.

    A caller's `temperature` replaces the agent's; its `max_output_tokens` may lower the
    deployment's cap, never raise it.
    """
    _check_sizes(runtime, body)
    turns = _turns(body.messages)
    agent = await _agent_for_reply(runtime, principal=principal, agent_id=body.agent_id)
    if body.tools and agent.llm_provider == "echo":
        raise ToolsNotSupported(agent.llm_provider)
    plan = await runtime.plans.current(principal.tenant_id)
    size = runtime.size_class(agent.llm_provider, agent.model) or "unknown"
    if not allows_model(plan, provider=agent.llm_provider, model=agent.model, size_class=size):
        upgrade = upgrade_that_allows(
            plan.plan,
            lambda other: allows_model(
                other, provider=agent.llm_provider, model=agent.model, size_class=size
            ),
        )
        raise PlanLimitReached(
            f"The {plan.plan} plan no longer includes {agent.llm_provider} model {agent.model}.",
            limit="models",
            plan=plan.plan,
            upgrade_to=upgrade,
        )
    api_key: str | None = None
    if agent.api_key_encrypted:
        try:
            api_key = runtime.cipher.decrypt(agent.api_key_encrypted)
        except ValueError:
            logger.error("agent_key_undecryptable", agent_id=str(agent.id))
            raise InvalidAgentConfig(
                "api_key", "the stored key cannot be read; set it again"
            ) from None
    target = AgentTarget(
        provider=agent.llm_provider, model=agent.model, base_url=agent.base_url, api_key=api_key
    )
    try:
        provider = await runtime.providers.provider_for(target)
    except ProviderError as error:
        raise problem_for(error) from None
    citations: list[dict[str, Any]] = []
    if agent.knowledge_collection_ids:
        question = next(
            (m.content for m in reversed(body.messages) if m.role == "user"),
            body.messages[-1].content,
        )
        citations = await runtime.knowledge.search(
            tenant_id=principal.tenant_id,
            user_id=principal.user_id,
            collection_ids=agent.knowledge_collection_ids,
            query=question,
        )
    output_cap = (
        runtime.settings.max_output_tokens
        if agent.llm_provider == "anthropic"
        else runtime.settings.openai_max_output_tokens
    )
    if max_output_tokens is not None:
        output_cap = max_output_tokens if output_cap is None else min(output_cap, max_output_tokens)
    request = CompletionRequest(
        model=agent.model,
        instructions=with_sources(agent.instructions, citations),
        temperature=agent.temperature if temperature is None else temperature,
        messages=turns,
        max_output_tokens=output_cap,
        tools=tuple(
            ToolSpec(name=tool.name, description=tool.description, parameters=tool.parameters)
            for tool in body.tools or ()
        ),
    )
    return PreparedReply(
        agent_id=agent.id,
        provider_name=agent.llm_provider,
        plan=plan.plan,
        provider=provider,
        request=request,
        streamed=body.stream,
        citations=citations,
    )


def _turns(messages: list[ConversationMessage]) -> list[Turn]:
    """The conversation as turns; tool fields must fit the role, and each tool result must
    answer an earlier assistant tool call (422 otherwise)."""
    turns: list[Turn] = []
    called: set[str] = set()
    for index, message in enumerate(messages):
        if message.tool_calls is None and message.tool_call_id is None:
            if message.role == "tool":
                raise InvalidToolMessage(index, "a tool message needs the tool_call_id it answers")
            turns.append(Turn(role=message.role, content=message.content))
            continue
        if message.tool_calls is not None and message.role != "assistant":
            raise InvalidToolMessage(index, "only assistant messages carry tool_calls")
        if message.tool_call_id is not None:
            if message.role != "tool":
                raise InvalidToolMessage(index, "only tool messages carry a tool_call_id")
            if message.tool_call_id not in called:
                raise InvalidToolMessage(index, "tool_call_id answers no earlier tool call")
        calls = tuple(
            ToolCall(id=call.id, name=call.name, arguments=call.arguments)
            for call in message.tool_calls or ()
        )
        called.update(call.id for call in calls)
        turns.append(Turn(message.role, message.content, calls, message.tool_call_id))
    return turns


async def _agent_for_reply(
    runtime: AgentsRuntime, *, principal: Principal, agent_id: uuid.UUID
) -> AgentSnapshot:
    cached = runtime.agents.get(agent_id, tenant_id=principal.tenant_id, user_id=principal.user_id)
    if cached is not None:
        return cached
    async with runtime.database.transaction() as session:
        agent = await get_agent(session, principal=principal, agent_id=agent_id)
    snapshot = AgentSnapshot(
        id=agent.id,
        tenant_id=agent.tenant_id,
        user_id=agent.user_id,
        llm_provider=agent.llm_provider,
        model=agent.model,
        instructions=agent.instructions,
        temperature=agent.temperature,
        base_url=agent.base_url,
        api_key_encrypted=agent.api_key_encrypted,
        knowledge_collection_ids=tuple(uuid.UUID(c) for c in agent.knowledge_collection_ids or []),
    )
    runtime.agents.put(snapshot)
    return snapshot


def problem_for(error: ProviderError) -> ProblemError:
    """The problem a client sees for an upstream failure (no upstream text: it may echo keys)."""
    if error.kind == "rate_limited":
        return ProviderRateLimited(
            error.message, retry_after=max(1, math.ceil(error.retry_after or 5))
        )
    if error.kind == "timeout":
        return ProviderTimedOut(error.message)
    if error.kind in ("rejected", "credentials"):
        return ProviderRejected(error.message)
    return ProviderUnavailable(error.message)


async def reply_stream(
    *, runtime: AgentsRuntime, prepared: PreparedReply
) -> AsyncIterator[StreamItem]:
    """The provider's items with retries before the first token, a total deadline and metrics.

    Failures surface as `ProblemError`s (after the first token too: the caller knows what it sent).
    """
    provider_name, plan = prepared.provider_name, prepared.plan
    started = time.perf_counter()
    deadline = asyncio.get_running_loop().time() + runtime.settings.total_timeout_seconds
    outcome, error_kind = "error", None
    span = model_call_span(provider=provider_name, model=prepared.request.model, plan=plan)

    def count_retry(error: ProviderError) -> None:
        LLM_RETRIES.labels(provider_name).inc()
        logger.warning("llm_retry", provider=provider_name, kind=error.kind, status=error.status)
        if span is not None:
            span.retried(error.kind)

    items = stream_with_retries(
        lambda: prepared.provider.stream(prepared.request, streamed=prepared.streamed),
        runtime.retry_policy,
        on_retry=count_retry,
    )
    first = True
    try:
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    item = await anext(items)
            except StopAsyncIteration:
                break
            except TimeoutError:
                raise ProviderError(
                    "timeout", "The reply took too long.", after_first_token=not first
                ) from None
            if first and isinstance(item, TextDelta):
                first_token_seconds = time.perf_counter() - started
                LLM_TIME_TO_FIRST_TOKEN.labels(provider_name, plan).observe(first_token_seconds)
                if span is not None:
                    span.first_chunk(first_token_seconds)
                first = False
            if isinstance(item, StreamEnd):
                LLM_TOKENS.labels(provider_name, "in", plan).inc(item.input_tokens)
                LLM_TOKENS.labels(provider_name, "out", plan).inc(item.output_tokens)
                if span is not None:
                    span.finished(
                        input_tokens=item.input_tokens,
                        output_tokens=item.output_tokens,
                        model=item.model,
                        finish_reason=item.finish_reason,
                    )
                outcome = "completed"
            yield item
    except ProviderError as error:
        error_kind = error.kind
        LLM_ERRORS.labels(provider_name, error.kind).inc()
        logger.warning(
            "llm_failed",
            provider=provider_name,
            kind=error.kind,
            status=error.status,
            after_first_token=error.after_first_token,
        )
        raise problem_for(error) from None
    except (asyncio.CancelledError, GeneratorExit):
        outcome = "cancelled"
        raise
    finally:
        await items.aclose()  # type: ignore[attr-defined]
        LLM_DURATION.labels(provider_name, outcome).observe(time.perf_counter() - started)
        if span is not None:
            span.end(outcome=outcome, error_kind=error_kind)
