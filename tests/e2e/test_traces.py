"""One chat send is one trace: gateway → chat → agents → the model call, and the bus event chat
publishes on to the tenants consumer that meters it (spans exported to memory)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from kibitz.kit.tracing import configure_tracing, shutdown_tracing, tracing_for
from tests.fixtures.otlp import OtlpReceiver
from tests.fixtures.serving import serving
from tests.fixtures.simulator import start_simulator
from tests.fixtures.stack import start_stack
from tests.services.chat.world import SERVICE_MODULES, World, chat_world, read_sse


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    """Tracing on for the test, every span kept in memory."""
    exporter = InMemorySpanExporter()
    assert configure_tracing("kibitz-test", exporter=exporter)
    try:
        yield exporter
    finally:
        shutdown_tracing()


@pytest.fixture
async def world(tmp_path: Path, exported: InMemorySpanExporter) -> AsyncIterator[World]:
    """Every service and the gateway in this process, the simulator behind agents."""
    async with chat_world(tmp_path, gateway=True) as running:
        yield running


def _attribute(span: ReadableSpan, name: str) -> Any:
    return (span.attributes or {}).get(name)


class Tree:
    """The spans of one trace, by id, with their parents."""

    def __init__(self, spans: list[ReadableSpan], trace_id: int) -> None:
        self.spans = [span for span in spans if span.context.trace_id == trace_id]
        self.by_id = {span.context.span_id: span for span in self.spans}

    def parent(self, span: ReadableSpan) -> ReadableSpan | None:
        return self.by_id.get(span.parent.span_id) if span.parent else None

    def one(self, **match: Any) -> ReadableSpan:
        found = [span for span in self.spans if self._matches(span, match)]
        assert len(found) == 1, (match, [span.name for span in self.spans])
        return found[0]

    def children(self, parent: ReadableSpan, **match: Any) -> list[ReadableSpan]:
        return [
            span
            for span in self.spans
            if span.parent is not None
            and span.parent.span_id == parent.context.span_id
            and self._matches(span, match)
        ]

    def descendants(self, ancestor: ReadableSpan, **match: Any) -> list[ReadableSpan]:
        found = []
        for span in self.spans:
            above = self.parent(span)
            while above is not None and above is not ancestor:
                above = self.parent(above)
            if above is ancestor and self._matches(span, match):
                found.append(span)
        return found

    @staticmethod
    def _matches(span: ReadableSpan, match: dict[str, Any]) -> bool:
        for key, value in match.items():
            actual = (
                span.name
                if key == "name"
                else span.kind
                if key == "kind"
                else _attribute(span, key.replace("__", "."))
            )
            if actual != value:
                return False
        return True


async def _consumer_span(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    for _ in range(100):
        for span in exporter.get_finished_spans():
            if span.name == name and span.kind == SpanKind.CONSUMER:
                return span
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {name} consumer span")


async def test_one_chat_send_is_one_trace_from_the_gateway_to_the_model_and_the_bus(
    world: World, exported: InMemorySpanExporter
) -> None:
    alice = await world.member()
    exported.clear()  # registration and agent creation are traces of their own
    async with world.http.stream(
        "POST",
        world.url("/chat/send"),
        json={"content": "hello there", "agent_id": alice.agent_id},
        headers={
            **alice.headers,
            "Accept": "text/event-stream",
            # A public caller's trace context is not continued: traces start at the gateway.
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        },
    ) as response:
        assert response.status_code == 201
        events = await read_sse(response)
    assert events[-1].event == "message.completed"
    consumed = await _consumer_span(exported, "process chat.message_completed")

    spans = list(exported.get_finished_spans())
    root = next(
        span
        for span in spans
        if _attribute(span, "kibitz.service") == "gateway"
        and _attribute(span, "url.path") == "/chat/send"
    )
    assert root.parent is None
    assert root.kind == SpanKind.SERVER
    assert root.context.trace_id != 0x0AF7651916CD43DD8448EB211C80319C
    tree = Tree(spans, root.context.trace_id)
    # Nothing of the send is in another trace, and every span's parent is in this one.
    assert all(tree.parent(span) is not None for span in tree.spans if span is not root)

    proxied = tree.children(root, kind=SpanKind.CLIENT, kibitz__peer__service="chat")
    assert len(proxied) == 1
    chat = tree.children(proxied[0], kind=SpanKind.SERVER, kibitz__service="chat")
    assert [span.name for span in chat] == ["POST /chat/send"]
    assert _attribute(chat[0], "http.response.status_code") == 201
    # The agent is asked by the reply's job (its span continues the send's trace) or, for a
    # tenant with quota to spare, straight from the send: under chat's span either way.
    to_agents = tree.descendants(
        chat[0],
        kind=SpanKind.CLIENT,
        kibitz__peer__service="agents",
        url__path="/agents/internal/respond",
    )
    assert len(to_agents) == 1
    agents = tree.children(to_agents[0], kind=SpanKind.SERVER, kibitz__service="agents")
    assert [span.name for span in agents] == ["POST /agents/internal/respond"]
    model_calls = tree.children(agents[0], name="chat gpt-4o-mini")
    assert len(model_calls) == 1
    model = model_calls[0]
    assert model.kind == SpanKind.CLIENT
    assert _attribute(model, "gen_ai.provider.name") == "openai"
    assert _attribute(model, "gen_ai.request.model") == "gpt-4o-mini"
    assert _attribute(model, "gen_ai.usage.input_tokens") > 0
    assert _attribute(model, "gen_ai.usage.output_tokens") > 0
    assert 0 < _attribute(model, "gen_ai.response.time_to_first_chunk") < 5
    assert _attribute(model, "kibitz.outcome") == "completed"

    # The event chat wrote to its outbox carries the trace to the tenants consumer.
    assert consumed.context.trace_id == root.context.trace_id
    produced = tree.parent(consumed)
    assert produced is not None
    assert produced.kind == SpanKind.PRODUCER
    assert produced.name == "publish chat.message_completed"
    assert _attribute(consumed, "messaging.consumer.group.name") == "tenants"
    # The producer span is chat's: somewhere under its server span.
    ancestor = tree.parent(produced)
    while ancestor is not None and ancestor is not chat[0]:
        ancestor = tree.parent(ancestor)
    assert ancestor is chat[0]


async def test_spans_of_a_module_in_a_child_process_reach_the_collector_in_the_same_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = OtlpReceiver()
    # 50 ms: batches leave soon enough for a test (default 5 s); the child inherits it.
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    async with serving(receiver) as collector, start_simulator(ttft_ms=5, gap_ms=2) as sim:
        env = {
            "KIBITZ_AGENTS_OPENAI_API_KEY": "sk-simulated",
            "KIBITZ_AGENTS_OPENAI_BASE_URL": sim.openai_base_url,
            "KIBITZ_OTLP_ENDPOINT": collector,
        }
        with tracing_for("kibitz", endpoint=collector):
            async with start_stack(
                [*SERVICE_MODULES, "gateway"], data_dir=tmp_path, env=env, own_processes=["agents"]
            ) as stack:
                world = World(stack=stack, simulator=sim, base=stack.url("gateway"))
                world.through_gateway = True
                alice = await world.member()
                response = await world.send(alice, "hello")
                assert response.status_code == 201
                for _ in range(200):
                    if receiver.named("chat gpt-4o-mini") and receiver.named(
                        "process chat.message_completed"
                    ):
                        break
                    await asyncio.sleep(0.05)
    [(model_service, model)] = receiver.named("chat gpt-4o-mini")
    # Made in the agents child process, exported by its own SDK, under its own name.
    assert model_service == "kibitz-agents"
    by_id = {span.span_id: (service, span) for service, span in receiver.spans}
    chain = []
    service, span = model_service, model
    while True:
        chain.append((service, span.name))
        if not span.parent_span_id:
            break
        service, span = by_id[span.parent_span_id]
        assert span.trace_id == model.trace_id
    assert chain[-1] == ("kibitz", "POST /chat/{path}")  # the gateway's server span: the root
    assert ("kibitz-agents", "POST /agents/internal/respond") in chain
    assert ("kibitz", "POST /chat/send") in chain
    [(_, consumed)] = receiver.named("process chat.message_completed")
    assert consumed.trace_id == model.trace_id
