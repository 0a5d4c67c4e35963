"""Orchestrated replies: the chat's first agent consults the others through tool calls.

The orchestrator is offered one tool per other participant, `ask_<handle>(task)`, described by
that agent's name and instructions (the providers' native tool calling, through the agents
service). Each call it makes is a delegation: a reply job of its own (a message whose
`parent_id` is the orchestrator's reply, marked `delegated`, leased and streamed to the chat's
subscribers like any reply), whose answer goes back to the orchestrator as the tool's result.
The orchestrator then writes the final answer. Bounded: at most `max_delegations_per_turn` in a
turn, nested at most `max_delegation_depth` deep (1: a delegate is offered no tools). A delegate
that fails does not fail the turn: the orchestrator is told, and still answers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy.exc import IntegrityError

from kibitz.kit.errors import ProblemError
from kibitz.kit.http import OpenedStream
from kibitz.kit.ids import new_id
from kibitz.services.chat.models import Message, MessageStatus, Sender, utcnow
from kibitz.services.chat.replies.agent_stream import ReplyProgress, read_reply
from kibitz.services.chat.replies.delegates import Delegate, load_delegates
from kibitz.services.chat.replies.orders import ReplyOrder, new_holder
from kibitz.services.chat.replies.repository import DelegationRepository, ReplyJobRepository
from kibitz.services.chat.repository import ChatRepository
from kibitz.services.chat.schemas import MessageRead
from kibitz.services.chat.streams.cursor import CREATED

if TYPE_CHECKING:
    from kibitz.services.chat.replies.generate import ReplyGenerator

logger = structlog.get_logger("kibitz.chat")

DeltaHandler = Callable[[str], Awaitable[None]]
# 8000 characters: a delegate's answer as the orchestrator reads it (a long one is cut, so a
# few delegations stay well inside the agents service's 200 000-character conversation).
_RESULT_CHARS = 8000


@dataclass
class TurnBudget:
    """The delegations an orchestrated turn may still make (shared by every level of it)."""

    left: int

    def take(self) -> bool:
        """Use one delegation, if any is left."""
        if self.left <= 0:
            return False
        self.left -= 1
        return True


async def turn_budget(generator: ReplyGenerator, order: ReplyOrder) -> TurnBudget:
    """What the order's turn may still delegate: the bound less the delegated replies stored
    under the turn's top reply. Read from the database, not kept in a process, so a reply
    retried after a crash (or taken over by another replica) cannot start afresh."""
    settings = generator.settings
    async with generator.database.reading() as session:
        delegations = DelegationRepository(session)
        # A delegate's own order is `depth` levels below the reply that answers the user.
        top = await delegations.ancestor(order.message_id, levels=order.depth)
        used = await delegations.count_under(
            order.chat_id, top, depth=max(settings.max_delegation_depth, order.depth + 1)
        )
    return TurnBudget(max(0, settings.max_delegations_per_turn - used))


@dataclass(frozen=True)
class DelegateAnswer:
    """How a delegation ended, as the orchestrator is told."""

    status: MessageStatus
    content: str
    error: str | None = None


class Orchestration:
    """One orchestrating reply: rounds of (the orchestrator answers or calls tools → the calls
    are delegated, one after another) until it answers without calling any."""

    def __init__(
        self,
        generator: ReplyGenerator,
        order: ReplyOrder,
        progress: ReplyProgress,
        on_delta: DeltaHandler,
        budget: TurnBudget | None,
        *,
        asked: OpenedStream | None = None,
        offered: list[Delegate] | None = None,
    ) -> None:
        self.generator = generator
        self.order = order
        self.progress = progress
        self.on_delta = on_delta
        # The turn's, when a reply of it above this one runs here; else read at the start.
        self.given = budget
        # Its first request, already on its way (`ReplyGenerator.start`), and the tools it
        # offered.
        self.asked: OpenedStream | None = asked if offered else None
        self.offered: list[Delegate] | None = offered

    async def run(self) -> None:
        """Answer, consulting the delegates on the way; the text of every round streams."""
        # Whom it may ask and what the turn may still delegate matter only once it calls a
        # tool: both are read while its first model call runs.
        allowed = asyncio.create_task(self._look_up())
        budget = asyncio.create_task(self._budget())
        try:
            await self._converse(allowed, budget)
        finally:
            for task in (allowed, budget):
                task.cancel()
                if task.done() and not task.cancelled():
                    task.exception()  # an unused read that failed is no failure of the reply

    async def _look_up(self) -> list[Delegate]:
        found = await load_delegates(self.generator.agents, self.order)
        self.generator.descriptions.learn(self.order, found)
        return found

    async def _budget(self) -> TurnBudget:
        if self.given is not None:
            return self.given
        return await turn_budget(self.generator, self.order)

    async def _converse(
        self, allowed: asyncio.Task[list[Delegate]], budgeted: asyncio.Task[TurnBudget]
    ) -> None:
        agents = self.generator.agents
        # The tools offered: as last read when this process read them lately, else read now.
        offered = (
            self.offered or self.generator.descriptions.remembered(self.order) or await allowed
        )
        if not offered:
            await read_reply(agents, self.order, self.progress, self.on_delta)
            return
        by_tool = {delegate.tool: delegate for delegate in offered}
        tools = [delegate.definition() for delegate in offered]
        messages = list(self.order.context)
        rounds, last_round = 0, 0
        while True:
            rounds += 1
            start = self.progress.length
            asked, self.asked = self.asked, None
            await read_reply(
                agents,
                self.order,
                self.progress,
                self.on_delta,
                messages=messages,
                tools=tools,
                asked=asked,
            )
            calls = self.progress.tool_calls
            if not calls:
                return
            budget, may_ask = await budgeted, await allowed
            # Every round with calls spends budget or is refused; past this the model ignores
            # the refusals, and its reply ends with what it wrote.
            last_round = last_round or budget.left + 2
            text = self.progress.content[start:]
            messages.append({"role": "assistant", "content": text, "tool_calls": calls})
            for call in calls:
                result = await self._result(call, by_tool, may_ask, budget)
                messages.append({"role": "tool", "tool_call_id": call["id"], "content": result})
            if rounds >= last_round:
                break
        logger.warning("chat_orchestrator_kept_calling", message_id=str(self.order.message_id))

    async def _result(
        self,
        call: dict[str, Any],
        by_tool: dict[str, Delegate],
        may_ask: list[Delegate],
        budget: TurnBudget,
    ) -> str:
        """What the orchestrator is told about one of its calls."""
        offered = by_tool.get(call["name"])
        if offered is None:
            return f"There is no tool named {call['name']}; answer without it."
        # As read for this reply: offered from older descriptions, it may be gone since.
        delegate = next((d for d in may_ask if d.agent_id == offered.agent_id), None)
        if delegate is None:
            return f"{offered.name} can no longer be asked; answer without it."
        task = str(call["arguments"].get("task") or "").strip()
        if not task:
            return f"{offered.tool} needs a task: say what to ask {delegate.name}."
        if not budget.take():
            return (
                f"Not asked: this turn has used its delegations "
                f"(at most {self.generator.settings.max_delegations_per_turn}). "
                "Answer with what you have."
            )
        others = tuple(d.agent_id for d in may_ask if d.agent_id != delegate.agent_id)
        answer = await ask_delegate(self.generator, self.order, delegate, task, others, budget)
        return told(delegate, answer)


def told(delegate: Delegate, answer: DelegateAnswer) -> str:
    """A delegate's answer as a tool result: its text, or that (and why) it failed."""
    content = answer.content.strip()
    if len(content) > _RESULT_CHARS:
        content = content[: _RESULT_CHARS - 1] + "…"
    if answer.status is MessageStatus.COMPLETE:
        return content or f"{delegate.name} answered with nothing."
    if answer.status is MessageStatus.STOPPED:
        said = f"{delegate.name} was stopped before finishing."
    else:
        said = f"{delegate.name} failed and could not answer: {answer.error or 'no reason given'}"
    return f"{said} What it wrote before that: {content}" if content else said


async def ask_delegate(
    generator: ReplyGenerator,
    parent: ReplyOrder,
    delegate: Delegate,
    task: str,
    others: tuple[uuid.UUID, ...],
    budget: TurnBudget,
) -> DelegateAnswer:
    """Ask the delegate, reserve its message and store the delegated reply and its job, announce
    it, generate it here (under its own lease: if this process dies, the sweep takes it over
    like any reply) and wait for its end."""
    settings = generator.settings
    message_id, now = new_id(), utcnow()
    depth = parent.depth + 1
    order = ReplyOrder(
        message_id=message_id,
        user_message_id=message_id,
        chat_id=parent.chat_id,
        tenant_id=parent.tenant_id,
        user_id=parent.user_id,
        agent_id=delegate.agent_id,
        context=[{"role": "user", "content": task[: settings.max_content_chars]}],
        request_id=parent.request_id,
        created_at=now,
        delegates=others if depth < settings.max_delegation_depth else (),
        depth=depth,
        parent_id=parent.message_id,
    )
    holder = new_holder()
    message = Message(
        id=message_id,
        chat_id=parent.chat_id,
        tenant_id=parent.tenant_id,
        user_id=parent.user_id,
        sender=Sender.AGENT.value,
        agent_id=delegate.agent_id,
        parent_id=parent.message_id,
        delegated=True,
        content="",
        status=MessageStatus.PENDING.value,
        input_tokens=0,
        output_tokens=0,
        created_at=now,
        updated_at=now,
    )
    # Asked at once, as a send's reply is (`ReplyGenerator.start`): the agent works while its
    # message is reserved and stored, and its deltas wait for the commit. A tenant near its
    # quota is asked only once its reservation is granted.
    quota = generator.quota
    early = None
    if quota is None or quota.comfortable(parent.tenant_id):
        early = generator.start(order, holder=holder, budget=budget)
    try:
        if quota is not None:
            # A delegated reply counts as a message of its own, reserved under its own id.
            await quota.reserve(parent.tenant_id, user_message_id=message_id)
        async with generator.database.transaction() as session:
            await ChatRepository(session).insert_messages([message])
            await ReplyJobRepository(session).add(
                message_id=message_id,
                tenant_id=parent.tenant_id,
                user_id=parent.user_id,
                payload=order.to_payload(),
                holder=holder,
                lease_seconds=settings.reply_lease_seconds,
            )
    except BaseException as failed:
        if early is not None:
            early.abandon()  # nothing stored: nothing streams, nothing is counted
        if isinstance(failed, ProblemError):  # the reservation was refused
            return DelegateAnswer(MessageStatus.FAILED, "", failed.detail)
        if isinstance(failed, IntegrityError):
            return DelegateAnswer(MessageStatus.FAILED, "", "The chat was deleted.")
        raise
    created = MessageRead.model_validate(message).model_dump(mode="json")
    running = early.task if early is not None else None
    try:
        try:
            await generator.fanout.publish(
                str(parent.chat_id), {"type": CREATED, "message": created}
            )
        finally:
            if early is not None:
                early.commit()
        if running is None:
            running = asyncio.create_task(generator.generate(order, holder=holder, budget=budget))
        ending = await asyncio.shield(running)
    except asyncio.CancelledError:
        # The orchestrator's reply is stopped or failed: its delegate stops too, keeping what
        # streamed.
        await generator.stop_here(message_id, wait_seconds=settings.stop_wait_seconds)
        raise
    if ending is None:  # taken over by another process: it ends the reply
        return DelegateAnswer(MessageStatus.FAILED, "", "The reply was interrupted.")
    return DelegateAnswer(ending.status, ending.content, ending.error)
