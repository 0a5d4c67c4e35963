"""Generating replies: the work queue's handler. It holds the reply's lease while the agent's
answer streams to the fan-out, saves what streamed every persist interval, and ends the reply
whatever happens; a reply whose generator died is taken over here (retried once if nothing had
streamed, else failed with what had)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from kibitz.kit.events import Outbox
from kibitz.kit.http import OpenedStream, ServiceClient
from kibitz.services.chat.config import ChatSettings
from kibitz.services.chat.models import MessageStatus
from kibitz.services.chat.replies.agent_stream import (
    ReplyFailedError,
    ReplyProgress,
    ask_agent,
    read_reply,
)
from kibitz.services.chat.replies.delegates import Delegate, DelegateDescriptions
from kibitz.services.chat.replies.delegation import Orchestration, TurnBudget
from kibitz.services.chat.replies.finish import ended_after_crash, finish_reply
from kibitz.services.chat.replies.orders import ReplyOrder, new_holder
from kibitz.services.chat.replies.repository import ReplyJobRepository
from kibitz.services.chat.repository import ChatRepository
from kibitz.services.chat.sending.quota import QuotaGate
from kibitz.services.chat.storage import ChatDatabase
from kibitz.services.chat.streams.fanout import Fanout
from kibitz.services.chat.turns.chain import TurnChain

logger = structlog.get_logger("kibitz.chat")

# 1 s: how often a generator renews its lease (a fifth of the default 5 s lease).
_RENEW_SECONDS = 1.0
# A retried reply is asked at most this many times in all.
_MAX_ATTEMPTS = 2
_RETRY_FAILED = "The reply could not be generated; please try again."
_INTERRUPTED = "The reply was interrupted."
# 1 s: how long an ending reply waits for its agent request and lease keeper to let go.
_LET_GO_SECONDS = 1.0


@dataclass
class _Running:
    """A reply being generated in this process."""

    stop: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class EarlyStart:
    """A reply asked while its send commits."""

    committed: asyncio.Future[None]
    task: asyncio.Task[ReplyEnding | None]
    # The agent's request, written when the send was checked (None: the task sends it).
    asked: OpenedStream | None

    def commit(self) -> None:
        """The send is stored and announced: let the deltas flow."""
        if not self.committed.done():
            self.committed.set_result(None)

    def abandon(self) -> None:
        """The send was refused: cancel the request, store nothing."""
        self.committed.cancel()
        self.task.cancel()
        if self.asked is not None:
            self.asked.abandon()


@dataclass(frozen=True)
class ReplyEnding:
    """How a reply generated here ended."""

    status: MessageStatus
    content: str
    error: str | None


class LeaseLost(Exception):
    """Another generator took the reply over (this one's lease lapsed)."""


class ReplyGenerator:
    """Runs reply jobs in this process."""

    def __init__(
        self,
        *,
        settings: ChatSettings,
        database: ChatDatabase,
        fanout: Fanout,
        outbox: Outbox,
        agents: ServiceClient,
        on_completed: Callable[[ReplyOrder, ReplyProgress], None] | None = None,
        quota: QuotaGate | None = None,
    ) -> None:
        self.settings = settings
        # Told of every reply that completed (a new chat's title is proposed from its first).
        self.on_completed = on_completed
        self.database = database
        self.fanout = fanout
        self.outbox = outbox
        self.agents = agents
        # Delegated replies count against the tenant's messages like any reply.
        self.quota = quota
        self.running: dict[uuid.UUID, _Running] = {}
        # Starts the next reply of a turn of several agents (its queue is wired by ReplyJobs).
        self.turns = TurnChain(lease_seconds=settings.reply_lease_seconds, new_holder=new_holder)
        self._early: set[asyncio.Task[ReplyEnding | None]] = set()
        # The tools an orchestrator offers, as last read.
        self.descriptions = DelegateDescriptions()

    # -- the queue's handler ------------------------------------------------------------------

    async def handle(self, payload: dict[str, Any], *, redelivered: bool) -> None:
        """One reply job: `{holder, order?, message_id}`. The first delivery of a job the send
        leased to its holder goes straight to the agent; any other takes the lease first."""
        holder = str(payload.get("holder") or "")
        message_id = uuid.UUID(str(payload["message_id"]))
        order_payload = payload.get("order")
        fresh = (
            not redelivered
            and order_payload is not None
            and float(payload.get("leased_until", 0)) - time.time() > _RENEW_SECONDS
        )
        if fresh:
            assert order_payload is not None
            await self.generate(ReplyOrder.from_payload(order_payload), holder=holder)
            return
        # A redelivery never trusts the token it carries: its first holder may still be alive.
        async with self.database.transaction() as session:
            claimed = await ReplyJobRepository(session).claim(
                message_id,
                holder=new_holder(),
                presented=None if redelivered else holder,
                lease_seconds=self.settings.reply_lease_seconds,
            )
        if claimed is None:
            return  # finished, or held by a live generator
        order = ReplyOrder.from_payload(claimed.payload)
        await self.take_over(order, holder=claimed.holder, attempts=claimed.attempts)

    async def take_over(self, order: ReplyOrder, *, holder: str, attempts: int) -> None:
        """A reply claimed from a generator that went away (or never came)."""
        async with self.database.reading() as session:
            message = await ChatRepository(session).get_message_by_id(order.message_id)
        if message is None or MessageStatus(message.status).finished:
            async with self.database.transaction() as session:
                await ReplyJobRepository(session).remove(order.message_id)
            return
        snapshot = None
        with contextlib.suppress(Exception):
            snapshot = await self.fanout.snapshot(str(order.message_id))
        if message.content or snapshot or message.status == MessageStatus.STREAMING.value:
            progress = ended_after_crash(order, message.content, snapshot)
            await self._finish(order, progress, MessageStatus.FAILED, _INTERRUPTED)
        elif attempts > _MAX_ATTEMPTS:
            await self._finish(order, ReplyProgress(), MessageStatus.FAILED, _RETRY_FAILED)
        else:
            logger.info("chat_reply_retried", message_id=str(order.message_id), attempt=attempts)
            await self.generate(order, holder=holder)

    # -- generating ---------------------------------------------------------------------------

    def start(
        self, order: ReplyOrder, *, holder: str, budget: TurnBudget | None = None
    ) -> EarlyStart:
        """Generate a reply here, asked while its send (or delegation) commits: the agent's
        request is written before this returns (when a connection is ready), so the agent
        starts while the rows are written; deltas (and any write) wait for
        `EarlyStart.commit`; `abandon` drops it unseen when it was refused."""
        committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # An orchestrator's request offers its tools: asked here when its delegates were read
        # lately, else by `Orchestration` once they are.
        offered = self.descriptions.remembered(order) if order.delegates else None
        asked = None
        if offered or not order.delegates:
            tools = [delegate.definition() for delegate in offered] if offered else None
            asked = ask_agent(self.agents, order, tools=tools)
        task = asyncio.create_task(
            self.generate(
                order,
                holder=holder,
                committed=committed,
                budget=budget,
                asked=asked,
                offered=offered,
            )
        )
        self._early.add(task)
        task.add_done_callback(self._early.discard)
        return EarlyStart(committed=committed, task=task, asked=asked)

    async def generate(
        self,
        order: ReplyOrder,
        *,
        holder: str,
        committed: asyncio.Future[None] | None = None,
        budget: TurnBudget | None = None,
        asked: OpenedStream | None = None,
        offered: list[Delegate] | None = None,
    ) -> ReplyEnding | None:
        """Stream the agent's reply to subscribers and store it, whoever is still listening;
        how it ended (None when another generator took it over). An orchestrating reply
        delegates within the turn's `budget` (read from the database when none is given)."""
        running = _Running()
        self.running[order.message_id] = running
        progress = ReplyProgress()
        status, error, lost = MessageStatus.COMPLETE, None, False
        publish = self._publisher(order, progress, committed)
        if order.delegates:
            answer = Orchestration(
                self, order, progress, publish, budget, asked=asked, offered=offered
            ).run()
        else:
            answer = read_reply(self.agents, order, progress, publish, asked=asked)
        reader = asyncio.create_task(answer)
        stopper = asyncio.create_task(running.stop.wait())
        keeper = asyncio.create_task(self._keep_lease(order, holder, progress, committed))
        try:
            done, _ = await asyncio.wait(
                {reader, stopper, keeper},
                timeout=self.settings.reply_timeout_seconds,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if reader in done:
                reader.result()
            elif stopper in done:
                status = MessageStatus.STOPPED
            elif keeper in done:
                keeper.result()  # raises LeaseLost
            else:
                status, error = MessageStatus.FAILED, "The reply took too long."
        except LeaseLost:
            logger.warning("chat_reply_lease_lost", message_id=str(order.message_id))
            lost = True  # its new holder ends it
        except ReplyFailedError as exc:
            status, error = MessageStatus.FAILED, exc.detail
        except asyncio.CancelledError:
            status, error = MessageStatus.FAILED, "The chat service stopped during the reply."
        except Exception:
            logger.exception("chat_reply_failed", message_id=str(order.message_id))
            status, error = MessageStatus.FAILED, "The reply failed unexpectedly."
        finally:
            for task in (reader, stopper, keeper):
                task.cancel()
            if asked is not None:
                asked.abandon()  # the reader may have been stopped before it read a thing
            # The reply ends now, even if the agent connection is slow to let go.
            _, stuck = await asyncio.wait({reader, stopper, keeper}, timeout=_LET_GO_SECONDS)
            if stuck:
                logger.warning("chat_reply_task_slow_to_stop", message_id=str(order.message_id))
            try:
                if committed is not None and not committed.done():
                    # Ended before its rows were stored (an agent that refused at once): its
                    # end is stored once they are, or not at all when it is abandoned.
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.wait({committed}, timeout=self.settings.reply_lease_seconds)
                stored = committed is None or (committed.done() and not committed.cancelled())
                if stored and not lost:
                    await self._finish(order, progress, status, error)
            finally:
                running.done.set()
                if self.running.get(order.message_id) is running:
                    del self.running[order.message_id]
        return None if lost else ReplyEnding(status, progress.content, error)

    def _publisher(
        self, order: ReplyOrder, progress: ReplyProgress, committed: asyncio.Future[None] | None
    ) -> Any:
        chat_key, message_key = str(order.chat_id), str(order.message_id)

        async def publish(text: str) -> None:
            if committed is not None and not committed.done():
                await committed  # the send is stored and announced: deltas may flow
            offset = progress.append(text)
            await self.fanout.publish_delta(chat_key, message_key, offset, text)

        return publish

    async def _keep_lease(
        self,
        order: ReplyOrder,
        holder: str,
        progress: ReplyProgress,
        committed: asyncio.Future[None] | None,
    ) -> None:
        """Renew the lease every second and save what streamed every persist interval; raises
        LeaseLost when another generator took the reply."""
        if committed is not None:
            await committed
        interval = min(self.settings.persist_interval_seconds, _RENEW_SECONDS)
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(interval)
            changed = progress.length != progress.saved_length
            if not changed and time.monotonic() - renewed < _RENEW_SECONDS:
                continue
            try:
                async with self.database.transaction() as session:
                    if changed:
                        length = progress.length
                        await ChatRepository(session).save_progress(
                            order.message_id,
                            content=progress.content,
                            status=MessageStatus.STREAMING,
                        )
                    held = await ReplyJobRepository(session).renew(
                        order.message_id,
                        holder=holder,
                        lease_seconds=self.settings.reply_lease_seconds,
                    )
                if not held:
                    raise LeaseLost()
                if changed:
                    progress.saved_length = max(progress.saved_length, length)
                renewed = time.monotonic()
            except LeaseLost:
                raise
            except Exception:
                logger.warning(
                    "chat_progress_save_failed", message_id=str(order.message_id), exc_info=True
                )

    async def _finish(
        self, order: ReplyOrder, progress: ReplyProgress, status: MessageStatus, error: str | None
    ) -> None:
        finished = await finish_reply(
            database=self.database,
            outbox=self.outbox,
            fanout=self.fanout,
            order=order,
            progress=progress,
            status=status,
            error=error,
            turns=self.turns,
        )
        if finished and status is MessageStatus.COMPLETE and self.on_completed is not None:
            self.on_completed(order, progress)

    # -- stopping -----------------------------------------------------------------------------

    async def on_stop_requested(self, message_id: str) -> None:
        """Someone asked (maybe on another replica) to stop a reply: stop it if it runs here."""
        with contextlib.suppress(ValueError):
            running = self.running.get(uuid.UUID(message_id))
            if running is not None:
                running.stop.set()

    async def stop_here(self, message_id: uuid.UUID, *, wait_seconds: float) -> bool:
        """Stop the reply if this process generates it (True), waiting a while for its end."""
        running = self.running.get(message_id)
        if running is None:
            return False
        running.stop.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(running.done.wait(), wait_seconds)
        return True

    async def stop_orphan(self, message_id: uuid.UUID) -> None:
        """Stop a reply nobody is generating (its lease lapsed): what streamed is kept."""
        async with self.database.transaction() as session:
            claimed = await ReplyJobRepository(session).claim(
                message_id,
                holder=new_holder(),
                presented=None,
                lease_seconds=self.settings.reply_lease_seconds,
            )
        if claimed is None:
            return
        order = ReplyOrder.from_payload(claimed.payload)
        async with self.database.reading() as session:
            message = await ChatRepository(session).get_message_by_id(message_id)
        if message is None:
            return
        snapshot = await self.fanout.snapshot(str(message_id))
        progress = ended_after_crash(order, message.content, snapshot)
        await self._finish(order, progress, MessageStatus.STOPPED, None)
