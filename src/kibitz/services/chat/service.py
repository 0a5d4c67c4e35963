"""Chat's business rules: sending, generating replies in the background, history, live streams."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.contracts.events import MessageCompleted
from kibitz.kit.batching import CallBatcher
from kibitz.kit.errors import (
    PROBLEM_BASE_URI,
    BadRequest,
    Conflict,
    NotFound,
    ProblemError,
    ServiceUnavailable,
    Unauthorized,
    Unprocessable,
)
from kibitz.kit.events import Outbox
from kibitz.kit.http import ServiceCallError, ServiceClient, ServiceResponse
from kibitz.kit.ids import new_id
from kibitz.kit.jwt import Principal
from kibitz.kit.platform import Platform
from kibitz.services.chat.config import ChatSettings
from kibitz.services.chat.errors import (
    ChatNotFound,
    ContentTooLarge,
    IdempotencyKeyReused,
    MessageNotFound,
    TooManyGenerations,
)
from kibitz.services.chat.fanout import Fanout, Subscription
from kibitz.services.chat.metrics import EARLY_ASKS
from kibitz.services.chat.models import Chat, Message, MessageStatus, Sender, utcnow
from kibitz.services.chat.recent_messages import RecentChat, RecentMessages
from kibitz.services.chat.replies import ReplyFailedError, ReplyProgress, problem_detail, sse_events
from kibitz.services.chat.repository import (
    ChatRepository,
    IdempotencyRepository,
    RecentMessage,
    SendReads,
    SendView,
)
from kibitz.services.chat.schemas import ChatRead, ChatSend, HistoryPage, MessageRead, SendResult
from kibitz.services.chat.storage import ChatDatabase
from kibitz.services.chat.streams import (
    CREATED,
    DELETED,
    Batch,
    ResumePoint,
    StreamCursor,
    terminal_event_name,
)
from kibitz.services.chat.titles.plain import plain_text

logger = structlog.get_logger("kibitz.chat")
_EARLY_ASK_CONFIRMED = EARLY_ASKS.labels("confirmed")
_EARLY_ASK_AGAIN = EARLY_ASKS.labels("asked_again")

# A chat's title defaults to this many of the first message's words.
_TITLE_WORDS = 8
_TITLE_CHARS = 80
# A reconnecting client is replayed at most this many messages before the live stream.
_REPLAY_LIMIT = 1000
# 30 s: how long a repeated Idempotency-Key waits for the first request to finish.
_IDEMPOTENCY_WAIT_SECONDS = 30.0
_IDEMPOTENCY_KEY_MAX = 255
# How long a reply waits for its messages to be stored before it gives up on them (s).
_STORE_WAIT_SECONDS = 30.0
# A tenant with at least this share of a quota left (and, for messages, at least this many) is
# "comfortable" for 10 s: its monthly tokens are not re-checked, and its replies start while
# the message reservation is still on its way.
_COMFORTABLE_SHARE = 0.1
_MESSAGES_COMFORTABLE_MIN = 5
_QUOTA_RECHECK_SECONDS = 10.0
_QUOTA_MEMORY_TENANTS = 10_000
# The tenants service's limit per reservation batch.
_RESERVATIONS_PER_CALL = 100


def message_dict(message: Message) -> dict[str, Any]:
    """A message as the API shows it (JSON-ready)."""
    return MessageRead.model_validate(message).model_dump(mode="json")


def default_title(content: str) -> str:
    """The first words of a message, as a chat title (plain text: no Markdown syntax)."""
    words = plain_text(content).split()
    title = " ".join(words[:_TITLE_WORDS])
    if len(title) > _TITLE_CHARS:
        title = title[: _TITLE_CHARS - 1].rstrip() + "…"
    elif len(words) > _TITLE_WORDS:
        title += "…"
    return title or "New chat"


def encode_chat_cursor(chat: Chat) -> str:
    """An opaque cursor after this chat in the newest-first list."""
    raw = f"{chat.updated_at.isoformat()}|{chat.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_chat_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """Read a chats cursor (422 when it is not one of ours)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        stamp, _, chat_id = base64.urlsafe_b64decode(padded.encode()).decode().partition("|")
        return datetime.fromisoformat(stamp), uuid.UUID(chat_id)
    except ValueError as exc:
        raise Unprocessable("The cursor is not valid.") from exc


def request_fingerprint(body: ChatSend) -> str:
    """A hash of the send's body, to tell a retry from a different request under the same key."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def passed_through_problem(response: ServiceResponse) -> ProblemError:
    """Another service's problem answer, as our own (same status, type, detail and extras)."""
    try:
        document = response.json()
    except ValueError:
        document = {}
    return problem_from_document(document, response.status_code, response.headers)


def problem_from_document(document: Any, status: int, headers: Mapping[str, str]) -> ProblemError:
    """A problem+json document another service answered (with its headers), as our own."""
    if not isinstance(document, dict):
        document = {}
    slug = str(document.get("type", "")).removeprefix(PROBLEM_BASE_URI).rsplit("/", 1)[-1]
    extra = {k: v for k, v in document.items() if k not in ("type", "title", "status", "detail")}
    passed = {name.lower(): value for name, value in headers.items()}
    return ProblemError(
        str(document.get("detail") or "The request was refused."),
        status=status,
        problem_type=slug or f"http-{status}",
        title=str(document.get("title") or "Error"),
        headers={
            name: passed[name]
            for name in ("retry-after", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset")
            if name in passed
        },
        extra=extra,
    )


@dataclass
class SendOutcome:
    """The answer to a send, and whether it is a replay of an earlier one (Idempotency-Key)."""

    result: dict[str, Any]
    replayed: bool = False
    # For a streamed send: the chat subscription opened before generation started.
    frames: AsyncIterator[Batch | None] | None = None


@dataclass
class _Generation:
    """A reply being generated in this process."""

    stop: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class _ReplyJob:
    chat_id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    agent_id: uuid.UUID
    message_id: str
    context: list[dict[str, str]]
    access_token: str
    request_id: str | None
    # The reply as the API shows it, set before `stored`.
    message: dict[str, Any] = field(default_factory=dict)
    # Set once the agent request is on its way (or could not be sent).
    asked: asyncio.Event = field(default_factory=asyncio.Event)
    # Set once the messages are stored (deltas wait for it); abandoned when storing failed.
    stored: asyncio.Event = field(default_factory=asyncio.Event)
    abandoned: bool = False
    task: asyncio.Task[None] | None = None

    def abandon(self) -> None:
        """Give the reply up before it was stored: its agent request is cancelled."""
        self.abandoned = True
        if self.task is not None:
            self.task.cancel()

    def again(self, *, agent_id: uuid.UUID, context: list[dict[str, str]]) -> _ReplyJob:
        """The same reply asked anew, from another context."""
        return _ReplyJob(
            chat_id=self.chat_id,
            tenant_id=self.tenant_id,
            user_id=self.user_id,
            agent_id=agent_id,
            message_id=self.message_id,
            context=context,
            access_token=self.access_token,
            request_id=self.request_id,
        )


async def _nothing() -> None:
    return None


def _key_reused() -> IdempotencyKeyReused:
    return IdempotencyKeyReused("This Idempotency-Key was used with a different request.")


def _comfortable(reservation: dict[str, Any], *, minimum: int) -> bool:
    """Whether a reservation answer leaves plenty of the quota."""
    remaining, limit = int(reservation.get("remaining", 0)), int(reservation.get("limit", 0))
    return remaining >= max(minimum, _COMFORTABLE_SHARE * limit)


class ChatService:
    """Everything chat does; one per process, shared by all requests."""

    def __init__(
        self,
        *,
        settings: ChatSettings,
        platform: Platform,
        database: ChatDatabase,
        fanout: Fanout,
        outbox: Outbox,
    ) -> None:
        self.settings = settings
        self.platform = platform
        self.database = database
        self.fanout = fanout
        self.outbox = outbox
        self.recent = RecentMessages(
            chats=settings.recent_chats,
            messages=settings.context_messages - 1,
            chars=settings.context_chars,
        )
        self._generations: dict[str, _Generation] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._clients: dict[str, ServiceClient] = {}
        self._running_by_user: Counter[uuid.UUID] = Counter()
        # tenant id -> until when (monotonic s) its monthly tokens need no re-check.
        self._tokens_fine_until: dict[uuid.UUID, float] = {}
        self._messages_fine_until: dict[uuid.UUID, float] = {}
        # Quota reservations of concurrent sends share round trips to the tenants service.
        self._reservations: CallBatcher[dict[str, Any], dict[str, Any]] = CallBatcher(
            self._send_reservations, max_batch=_RESERVATIONS_PER_CALL
        )

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect the fan-out (and listen for stop requests)."""
        await self.fanout.start(self._on_stop_requested)

    async def close(self) -> None:
        """Stop generating (what streamed is kept, marked failed) and disconnect."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.fanout.close()
        await self._reservations.close()
        for client in self._clients.values():
            await client.aclose()

    def _client(self, name: str) -> ServiceClient:
        if name not in self._clients:
            self._clients[name] = self.platform.client(name)
        return self._clients[name]

    def _spawn(self, coroutine: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- sending ----------------------------------------------------------------------------

    def check_content(self, content: str) -> None:
        """1 to `max_content_chars` characters: 422 when empty, 413 beyond the cap."""
        if not content.strip():
            raise Unprocessable(
                "The message is empty.",
                extra={"errors": [{"field": "content", "message": "empty"}]},
            )
        if len(content) > self.settings.max_content_chars:
            raise ContentTooLarge(
                f"A message holds at most {self.settings.max_content_chars} characters."
            )

    async def send(
        self,
        *,
        principal: Principal,
        body: ChatSend,
        access_token: str,
        idempotency_key: str | None,
        request_id: str | None = None,
        stream: bool = False,
    ) -> SendOutcome:
        """Store the user's message, start the reply in the background and answer at once."""
        self.check_content(body.content)
        if idempotency_key is not None:
            idempotency_key = idempotency_key.strip()
            if not 1 <= len(idempotency_key) <= _IDEMPOTENCY_KEY_MAX:
                raise BadRequest(f"Idempotency-Key must be 1 to {_IDEMPOTENCY_KEY_MAX} characters.")
            earlier = await self._claim_key(principal.user_id, idempotency_key, body)
            if earlier is not None:
                outcome = SendOutcome(result=earlier, replayed=True)
                if stream:
                    outcome.frames = self._replay_send(earlier)
                return outcome
        try:
            return await self._send(
                principal=principal,
                body=body,
                access_token=access_token,
                idempotency_key=idempotency_key,
                request_id=request_id,
                stream=stream,
            )
        except BaseException:
            if idempotency_key is not None:
                # The first attempt failed before answering: a retry may try again.
                async with self.database.transaction() as session:
                    await IdempotencyRepository(session).remove(
                        user_id=principal.user_id, key=idempotency_key, unanswered_only=True
                    )
            raise

    async def _claim_key(
        self, user_id: uuid.UUID, key: str, body: ChatSend
    ) -> dict[str, Any] | None:
        """Take the key (None), or the first answer given under it (waiting while in progress)."""
        fingerprint = request_fingerprint(body)
        deadline = time.monotonic() + _IDEMPOTENCY_WAIT_SECONDS
        expired_before = utcnow() - timedelta(seconds=self.settings.idempotency_ttl_seconds)
        while True:
            try:
                async with self.database.transaction() as session:
                    keys = IdempotencyRepository(session)
                    existing = await keys.get(user_id=user_id, key=key)
                    if existing is not None and existing.created_at < expired_before:
                        await keys.remove(user_id=user_id, key=key)
                        await session.flush()
                        existing = None
                    if existing is None:
                        await keys.claim(user_id=user_id, key=key, request_hash=fingerprint)
                        return None
                    if existing.request_hash != fingerprint:
                        raise _key_reused()
                    if existing.response is not None:
                        return dict(existing.response)
            except IntegrityError:
                pass  # another request claimed it first: wait for its answer
            # The first request is in progress: poll on the read path (no write lock).
            while True:
                if time.monotonic() > deadline:
                    raise Conflict("A request with this Idempotency-Key is still being handled.")
                await asyncio.sleep(0.02)
                async with self.database.reading() as session:
                    existing = await IdempotencyRepository(session).get(user_id=user_id, key=key)
                    if existing is None:
                        break  # the first attempt failed and let the key go: claim it
                    if existing.request_hash != fingerprint:
                        raise _key_reused()
                    if existing.response is not None:
                        return dict(existing.response)

    async def _send(
        self,
        *,
        principal: Principal,
        body: ChatSend,
        access_token: str,
        idempotency_key: str | None,
        request_id: str | None,
        stream: bool,
    ) -> SendOutcome:
        now = utcnow()
        ids = (new_id(), new_id())  # the user's message, then the reply: time-ordered
        if self._running_by_user[principal.user_id] >= self.settings.max_concurrent_generations:
            raise self._too_many_generations()
        # A tenant far from its daily limit gets its reply started before the reservation
        # answers (it is cancelled at once if refused), and the reservation is only sent once the
        # agent has been asked: its round trip (and the tenants service's work, in the same
        # process all-in-one) then delays neither the checks nor the agent request. For a tenant
        # near the limit, the checks, the agent check and the reservation run at once (they are
        # independent round trips) and the reply waits for the answer; a send refused by a check
        # may then still have counted one message against the caller's own quota (the cap is
        # pre-checked above to keep that rare).
        optimistic = self._messages_fine_until.get(principal.tenant_id, 0.0) > time.monotonic()
        reservation: asyncio.Future[None] | None = None
        remembered = None
        if optimistic and body.chat_id is not None:
            remembered = self.recent.get(
                body.chat_id, tenant_id=principal.tenant_id, user_id=principal.user_id
            )
        if remembered is None:
            if not optimistic:
                reservation = asyncio.ensure_future(
                    self._reserve_message(principal.tenant_id, key=str(ids[0]))
                )
            view = await self._checked_send(principal, body, now, ids[0], access_token, reservation)
            agent_id, history = view.agent_id, view.history
        else:
            # Asked from the messages remembered here; the read below confirms them.
            agent_id, history = remembered.agent_id, list(remembered.messages)
        job = self._start_reply(
            _ReplyJob(
                chat_id=body.chat_id or new_id(),
                tenant_id=principal.tenant_id,
                user_id=principal.user_id,
                agent_id=agent_id,
                message_id=str(ids[1]),
                context=self._context(history, body.content),
                access_token=access_token,
                request_id=request_id,
            )
        )
        try:
            # Nothing below is needed for the reply's first token: the agent request goes first.
            await job.asked.wait()
            # Socket wake-ups are "sync": Linux runs the process that reads the request (agents,
            # all-in-one) on this CPU, after us. Yielding lets it go first; measured at one user,
            # the first token came ~1 ms sooner. Elsewhere this is a no-op system call.
            os.sched_yield()
            if remembered is not None:
                view = await self._check_send(principal, body, now, ids[0])
                job = self._confirmed(job, view, body.content)
            if reservation is None:
                reservation = asyncio.ensure_future(
                    self._reserve_message(principal.tenant_id, key=str(ids[0]))
                )
            await reservation  # 429 when refused: the reply is abandoned
            result = await self._store_send(
                principal, body, job.chat_id, view, now, ids, idempotency_key
            )
        except BaseException as exc:
            job.abandon()
            if reservation is not None and not reservation.done():
                reservation.cancel()
            if isinstance(exc, IntegrityError):
                raise ChatNotFound() from exc  # deleted while we were checking
            raise
        self._remember_send(job, view, ids, body.content)
        return await self._announce_send(job, result, stream=stream)

    def _remember_send(
        self, job: _ReplyJob, view: SendView, ids: tuple[uuid.UUID, uuid.UUID], content: str
    ) -> None:
        """The chat as it now stands: the stored messages, then the new message and reply."""
        pending = RecentMessage(ids[1], Sender.AGENT.value, "", MessageStatus.PENDING.value)
        sent = RecentMessage(ids[0], Sender.USER.value, content, MessageStatus.COMPLETE.value)
        self.recent.put(
            job.chat_id,
            RecentChat(
                tenant_id=job.tenant_id,
                user_id=job.user_id,
                agent_id=view.agent_id,
                messages=(pending, sent, *view.history),
            ),
        )

    def _confirmed(self, job: _ReplyJob, view: SendView, content: str) -> _ReplyJob:
        """The job asked from remembered messages if the stored ones give the same context;
        otherwise (another process wrote to the chat) the reply asked anew from the stored."""
        context = self._context(view.history, content)
        agreed = view.agent_id == job.agent_id and context == job.context
        self.recent.checked(agreed=agreed)
        if agreed:
            _EARLY_ASK_CONFIRMED.inc()
            return job
        _EARLY_ASK_AGAIN.inc()
        job.abandon()
        return self._start_reply(job.again(agent_id=view.agent_id, context=context))

    async def _store_send(
        self,
        principal: Principal,
        body: ChatSend,
        chat_id: uuid.UUID,
        view: SendView,
        now: datetime,
        ids: tuple[uuid.UUID, uuid.UUID],
        idempotency_key: str | None,
    ) -> dict[str, Any]:
        """Store the user's message and the pending reply (and a new chat); the answer."""
        user_message, agent_message = self._new_messages(principal, chat_id, now, ids, body)
        result = SendResult(
            chat_id=chat_id,
            user_message=MessageRead.model_validate(user_message),
            agent_message=MessageRead.model_validate(agent_message),
        ).model_dump(mode="json")
        async with self.database.transaction() as session:
            chats = ChatRepository(session)
            if body.chat_id is None:
                chats.add(
                    Chat(
                        id=chat_id,
                        tenant_id=principal.tenant_id,
                        user_id=principal.user_id,
                        agent_id=view.agent_id,
                        title=view.title,
                        created_at=now,
                        updated_at=now,
                    )
                )
            else:
                await chats.touch_chat(chat_id, now, title=body.title)
            await session.flush()  # the new chat first: the messages refer to it
            await chats.insert_messages([user_message, agent_message])
            if idempotency_key is not None:
                await IdempotencyRepository(session).record(
                    user_id=principal.user_id, key=idempotency_key, response=result
                )
        return result

    async def _announce_send(
        self, job: _ReplyJob, result: dict[str, Any], *, stream: bool
    ) -> SendOutcome:
        """Tell the chat's subscribers about the two new messages (and subscribe the sender
        first, if it streams); the reply's deltas may flow from then on."""
        user_dict, agent_dict = result["user_message"], result["agent_message"]
        job.message = agent_dict
        outcome = SendOutcome(result=result)
        chat_key = str(job.chat_id)
        if stream:
            exits = contextlib.ExitStack()
            subscription = exits.enter_context(self.fanout.subscribe(chat_key))
            outcome.frames = self._frames(
                subscription,
                exits,
                cursor=StreamCursor(only={user_dict["id"], agent_dict["id"]}),
                replay=[(user_dict, ""), (agent_dict, "")],
                until=agent_dict["id"],
            )
        try:
            await self.fanout.publish(chat_key, {"type": CREATED, "message": user_dict})
            await self.fanout.publish(chat_key, {"type": CREATED, "message": agent_dict})
        finally:
            job.stored.set()
        return outcome

    async def _checked_send(
        self,
        principal: Principal,
        body: ChatSend,
        now: datetime,
        before: uuid.UUID,
        access_token: str,
        reservation: asyncio.Future[None] | None,
    ) -> SendView:
        """The send's checks (and the agent check of a new chat, and the reservation if it was
        sent), run at once; the first refusal is raised once all have answered."""
        checked = await asyncio.gather(
            self._check_send(principal, body, now, before),
            self._check_agent(body.agent_id, access_token) if body.agent_id else _nothing(),
            return_exceptions=True,
        )
        for answer in checked:
            if isinstance(answer, BaseException):
                if reservation is not None:
                    await asyncio.gather(reservation, return_exceptions=True)
                raise answer
        if reservation is not None:
            await reservation
        view: SendView = checked[0]  # type: ignore[assignment]
        return view

    def _start_reply(self, job: _ReplyJob) -> _ReplyJob:
        """Start generating the reply in the background (its deltas wait until it is stored)."""
        generation = _Generation()
        self._generations[job.message_id] = generation
        self._running_by_user[job.user_id] += 1
        progress = ReplyProgress()
        # The reader before the task that watches it: the agent request goes out a turn sooner.
        reader = asyncio.create_task(self._read_reply(job, progress))
        job.task = self._spawn(self._generate(job, generation, reader, progress))

        def settled(_: asyncio.Task[None]) -> None:
            # A generation cancelled before it ran has not stopped its reader, nor asked.
            reader.cancel()
            job.asked.set()

        job.task.add_done_callback(settled)
        return job

    @staticmethod
    def _new_messages(
        principal: Principal,
        chat_id: uuid.UUID,
        now: datetime,
        ids: tuple[uuid.UUID, uuid.UUID],
        body: ChatSend,
    ) -> tuple[Message, Message]:
        """The user's message and the pending reply."""
        common = {
            "chat_id": chat_id,
            "tenant_id": principal.tenant_id,
            "user_id": principal.user_id,
            "input_tokens": 0,
            "output_tokens": 0,
            "created_at": now,
            "updated_at": now,
        }
        user_message = Message(
            id=ids[0],
            sender=Sender.USER.value,
            content=body.content,
            status=MessageStatus.COMPLETE.value,
            **common,
        )
        agent_message = Message(
            id=ids[1],
            sender=Sender.AGENT.value,
            content="",
            status=MessageStatus.PENDING.value,
            **common,
        )
        return user_message, agent_message

    async def _check_send(
        self, principal: Principal, body: ChatSend, now: datetime, before: uuid.UUID
    ) -> SendView:
        """The chat is the caller's and the cap allows one more reply; its agent, its recent
        messages (newest first) and, for a new chat, its title (one statement either way)."""
        since = now - timedelta(seconds=self.settings.stale_generation_seconds)
        async with self.database.read_connection() as connection:
            reads = SendReads(connection)
            if body.chat_id is None:
                in_flight = await reads.in_flight(user_id=principal.user_id, since=since)
                self._check_cap(in_flight)
                assert body.agent_id is not None
                title = body.title or default_title(body.content)
                return SendView(
                    agent_id=body.agent_id, title=title, in_flight=in_flight, history=[]
                )
            chat = await reads.existing_chat(
                body.chat_id,
                tenant_id=principal.tenant_id,
                user_id=principal.user_id,
                since=since,
                before=before,
                limit=self.settings.context_messages - 1,
            )
        if chat is None:
            raise ChatNotFound()
        self._check_cap(chat.in_flight)
        return chat

    def _check_cap(self, in_flight: int) -> None:
        """429 when the user already has as many replies in flight as allowed."""
        if in_flight >= self.settings.max_concurrent_generations:
            raise self._too_many_generations()

    def _too_many_generations(self) -> TooManyGenerations:
        return TooManyGenerations(
            f"At most {self.settings.max_concurrent_generations} replies can be "
            "generated at once; wait for one to finish.",
            retry_after=2,
            extra={"limit": "concurrent_generations"},
        )

    def _context(self, history: Sequence[RecentMessage], content: str) -> list[dict[str, str]]:
        """The recent history sent to the agent (newest kept first), ending with the new message."""
        budget = self.settings.context_chars - len(content)
        window: list[dict[str, str]] = []
        for _, sender, text, status in history:  # newest first
            if not text or status == MessageStatus.PENDING.value:
                continue
            budget -= len(text)
            if budget < 0:
                break
            role = "user" if sender == Sender.USER.value else "assistant"
            window.append({"role": role, "content": text})
        window.reverse()
        # Providers expect the conversation to open with the user.
        while window and window[0]["role"] != "user":
            window.pop(0)
        window.append({"role": "user", "content": content})
        return window

    async def _check_agent(self, agent_id: uuid.UUID, access_token: str) -> None:
        """A new chat must be with one of the user's agents (404 otherwise)."""
        response = await self._client("agents").request(
            "GET", f"/agents/{agent_id}", headers={"Authorization": f"Bearer {access_token}"}
        )
        if response.status_code == 200:
            return
        if response.status_code == 404:
            raise NotFound(
                "No such agent.", problem_type="agent-not-found", title="Agent Not Found"
            )
        if response.status_code == 401:
            raise Unauthorized("Invalid or expired access token.")
        raise passed_through_problem(response)

    async def _reserve_message(self, tenant_id: uuid.UUID, *, key: str) -> None:
        """Count the message against the daily quota and check the monthly tokens (429 naming
        the limit that is spent). Tokens are only checked here (`chat.message_completed` counts
        them), and not again for a few seconds while plenty are left."""
        if not self.platform.has_service("tenants"):
            # Never a free pass: without the tenants service no quota can be checked.
            raise ServiceUnavailable("The quota check is unavailable; try again shortly.")
        metrics = ["messages"]
        if self._tokens_fine_until.get(tenant_id, 0.0) < time.monotonic():
            metrics.append("tokens")
        outcomes = await asyncio.gather(
            *(
                self._reservations.call(
                    {
                        "tenant_id": str(tenant_id),
                        "metric": metric,
                        "amount": 1,
                        "key": f"{key}:{metric}",
                    }
                )
                for metric in metrics
            )
        )
        for outcome in outcomes:
            if outcome["status"] == 429:
                raise problem_from_document(outcome["problem"], 429, outcome["headers"])
        for outcome in outcomes:
            if outcome["status"] != 200:
                logger.warning("chat_quota_check_failed", status=outcome["status"])
                raise ServiceUnavailable("The quota check is unavailable; try again shortly.")
        until = time.monotonic() + _QUOTA_RECHECK_SECONDS
        if len(self._messages_fine_until) > _QUOTA_MEMORY_TENANTS:
            # Entries are only hints; forgetting them all costs one strict check each.
            self._messages_fine_until.clear()
            self._tokens_fine_until.clear()
        if _comfortable(outcomes[0]["reservation"], minimum=_MESSAGES_COMFORTABLE_MIN):
            self._messages_fine_until[tenant_id] = until
        else:
            self._messages_fine_until.pop(tenant_id, None)
        if len(outcomes) == 2 and _comfortable(outcomes[1]["reservation"], minimum=0):
            self._tokens_fine_until[tenant_id] = until

    async def _send_reservations(self, reservations: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One round trip to the tenants service for the reservations of many sends (an
        outcome each; the call's own failure is every reservation's outcome)."""
        try:
            response = await self._client("tenants").request(
                "POST", "/tenants/internal/usage/reserve-batch", json={"reservations": reservations}
            )
        except ProblemError as unreachable:
            return [{"status": unreachable.status}] * len(reservations)
        if response.status_code != 200:
            return [{"status": response.status_code}] * len(reservations)
        outcomes: list[dict[str, Any]] = response.json()["outcomes"]
        return outcomes

    # -- generating -------------------------------------------------------------------------

    async def _generate(
        self,
        job: _ReplyJob,
        generation: _Generation,
        reader: asyncio.Task[None],
        progress: ReplyProgress,
    ) -> None:
        """Stream the agent's reply (the reader's) to subscribers and store it, whoever is
        still listening."""
        message_id = job.message_id
        status, error = MessageStatus.COMPLETE, None
        stopper = asyncio.create_task(generation.stop.wait())
        saver = asyncio.create_task(self._save_progress_periodically(job, progress))
        try:
            done, _ = await asyncio.wait(
                {reader, stopper},
                timeout=self.settings.reply_timeout_seconds,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if reader in done:
                reader.result()
            elif stopper in done:
                status = MessageStatus.STOPPED
            else:
                status, error = MessageStatus.FAILED, "The reply took too long."
        except ReplyFailedError as exc:
            status, error = MessageStatus.FAILED, exc.detail
        except asyncio.CancelledError:
            status, error = MessageStatus.FAILED, "The chat service stopped during the reply."
        except Exception:
            logger.exception("chat_reply_failed", message_id=message_id)
            status, error = MessageStatus.FAILED, "The reply failed unexpectedly."
        finally:
            for task in (reader, stopper, saver):
                task.cancel()
            await asyncio.gather(reader, stopper, saver, return_exceptions=True)
            try:
                if not job.abandoned:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(job.stored.wait(), _STORE_WAIT_SECONDS)
                if job.stored.is_set() and not job.abandoned:
                    await self._finish(job, progress, status, error)
            finally:
                generation.done.set()
                if self._generations.get(message_id) is generation:  # not its restart's
                    del self._generations[message_id]
                self._running_by_user[job.user_id] -= 1
                if self._running_by_user[job.user_id] <= 0:
                    del self._running_by_user[job.user_id]

    async def _read_reply(self, job: _ReplyJob, progress: ReplyProgress) -> None:
        chat_key, message_id = str(job.chat_id), job.message_id
        headers = {"Authorization": f"Bearer {job.access_token}", "Accept": "text/event-stream"}
        if job.request_id:
            headers["X-Request-ID"] = job.request_id
        body = {"agent_id": str(job.agent_id), "messages": job.context, "stream": True}
        try:
            async with self._client("agents").stream(
                "POST", "/agents/respond", json=body, headers=headers, sent=job.asked
            ) as response:
                if response.status_code != 200:
                    raise ReplyFailedError(
                        problem_detail(await response.aread(), response.status_code)
                    )
                async for event, data in sse_events(response):
                    if event == "delta":
                        text = str(data.get("content") or "")
                        if text:
                            if not job.stored.is_set():
                                await job.stored.wait()
                            offset = progress.append(text)
                            await self.fanout.publish_delta(chat_key, message_id, offset, text)
                    elif event == "done":
                        progress.finish(data)
                        await response.read_to_end()
                        return
                    elif event == "error":
                        raise ReplyFailedError(
                            str(data.get("detail") or data.get("title") or "error")
                        )
        except ProblemError as exc:
            raise ReplyFailedError(exc.detail) from exc
        except ServiceCallError as exc:
            raise ReplyFailedError("The connection to the agent was lost.") from exc
        finally:
            job.asked.set()  # also when the request could not be sent
        raise ReplyFailedError("The agent's reply ended unexpectedly.")

    async def _save_progress_periodically(self, job: _ReplyJob, progress: ReplyProgress) -> None:
        """Write what streamed every so often, so a crash or failure keeps it."""
        message_id = job.message_id
        key = uuid.UUID(message_id)
        await job.stored.wait()
        while True:
            await asyncio.sleep(self.settings.persist_interval_seconds)
            if progress.length == progress.saved_length:
                continue
            length, content = progress.length, progress.content
            try:
                async with self.database.transaction() as session:
                    await ChatRepository(session).save_progress(
                        key, content=content, status=MessageStatus.STREAMING
                    )
                progress.saved_length = length
            except Exception:
                logger.warning("chat_progress_save_failed", message_id=message_id)

    async def _finish(
        self, job: _ReplyJob, progress: ReplyProgress, status: MessageStatus, error: str | None
    ) -> None:
        """Store the reply's final state, meter it (outbox) and tell subscribers."""
        message_id = job.message_id
        values = {
            "content": progress.content,
            "status": status.value,
            "input_tokens": progress.input_tokens,
            "output_tokens": progress.output_tokens,
            "model": progress.model,
            "finish_reason": progress.finish_reason,
            "error": error,
            "citations": progress.citations,
        }
        try:
            finished = await self._store_final(job, values)
        except Exception:
            logger.exception("chat_reply_store_failed", message_id=message_id)
            finished = False
        if finished:
            self.recent.reply_finished(
                job.chat_id, uuid.UUID(message_id), content=progress.content, status=status.value
            )
            final = MessageRead.model_validate(
                {**job.message, **values, "updated_at": utcnow()}
            ).model_dump(mode="json")
            event = {"type": terminal_event_name(status.value), "message": final}
            with contextlib.suppress(Exception):
                await self.fanout.publish(str(job.chat_id), event)
        with contextlib.suppress(Exception):
            await self.fanout.forget(message_id)

    async def _store_final(self, job: _ReplyJob, values: dict[str, Any]) -> bool:
        async with self.database.transaction() as session:
            finished = await ChatRepository(session).finish(uuid.UUID(job.message_id), **values)
            if finished:
                await self.outbox.add(
                    session,
                    MessageCompleted(
                        message_id=uuid.UUID(job.message_id),
                        chat_id=job.chat_id,
                        tenant_id=job.tenant_id,
                        user_id=job.user_id,
                        agent_id=job.agent_id,
                        status=values["status"],
                        input_tokens=values["input_tokens"],
                        output_tokens=values["output_tokens"],
                    ),
                )
        return finished

    # -- stopping ---------------------------------------------------------------------------

    async def _on_stop_requested(self, message_id: str) -> None:
        generation = self._generations.get(message_id)
        if generation is not None:
            generation.stop.set()

    async def stop(self, *, principal: Principal, message_id: uuid.UUID) -> dict[str, Any]:
        """Stop a reply being generated; what streamed is kept and the status is `stopped`."""
        message = await self._owned_message(principal, message_id)
        if message["sender"] != Sender.AGENT.value:
            raise Conflict("Only a reply can be stopped.")
        if MessageStatus(message["status"]).finished:
            return message
        key = str(message_id)
        generation = self._generations.get(key)
        if generation is not None:
            generation.stop.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(generation.done.wait(), self.settings.stop_wait_seconds)
            return await self._owned_message(principal, message_id)
        await self.fanout.request_stop(key)
        deadline = time.monotonic() + self.settings.stop_wait_seconds
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            message = await self._owned_message(principal, message_id)
            if MessageStatus(message["status"]).finished:
                return message
        # Nobody is generating it (its replica went away): stop it here.
        await self._stop_orphan(message)
        return await self._owned_message(principal, message_id)

    async def _stop_orphan(self, message: dict[str, Any]) -> None:
        snapshot = await self.fanout.snapshot(str(message["id"]))
        content = snapshot if snapshot and len(snapshot) > len(message["content"]) else None
        progress = ReplyProgress()
        progress.append(content if content is not None else message["content"])
        async with self.database.reading() as session:
            chat = await ChatRepository(session).get_chat_by_id(uuid.UUID(message["chat_id"]))
        if chat is None:
            return
        job = _ReplyJob(
            chat_id=chat.id,
            tenant_id=chat.tenant_id,
            user_id=chat.user_id,
            agent_id=chat.agent_id,
            message_id=str(message["id"]),
            message=message,
            context=[],
            access_token="",
            request_id=None,
        )
        await self._finish(job, progress, MessageStatus.STOPPED, None)

    async def _owned_message(self, principal: Principal, message_id: uuid.UUID) -> dict[str, Any]:
        async with self.database.reading() as session:
            message = await ChatRepository(session).get_message(
                message_id, tenant_id=principal.tenant_id, user_id=principal.user_id
            )
            if message is None:
                raise MessageNotFound()
            return message_dict(message)

    # -- chats ------------------------------------------------------------------------------

    async def list_chats(
        self, session: AsyncSession, *, principal: Principal, limit: int, cursor: str | None
    ) -> dict[str, Any]:
        """The user's chats, most recently active first."""
        after = decode_chat_cursor(cursor) if cursor else None
        rows = await ChatRepository(session).list_chats(
            tenant_id=principal.tenant_id, user_id=principal.user_id, limit=limit + 1, after=after
        )
        page = list(rows[:limit])
        next_cursor = encode_chat_cursor(page[-1]) if len(rows) > limit else None
        items = [ChatRead.model_validate(chat).model_dump(mode="json") for chat in page]
        return {"items": items, "next_cursor": next_cursor}

    async def history(
        self, session: AsyncSession, *, chat: Chat, limit: int, before: uuid.UUID | None
    ) -> HistoryPage:
        """A page of the chat's messages before a cursor, oldest first."""
        rows = await ChatRepository(session).history_page(chat.id, limit=limit + 1, before=before)
        page = list(rows[:limit])
        next_cursor = str(page[-1].id) if len(rows) > limit else None
        page.reverse()
        return HistoryPage(
            chat=ChatRead.model_validate(chat),
            messages=[MessageRead.model_validate(message) for message in page],
            next_cursor=next_cursor,
        )

    async def rename(self, session: AsyncSession, *, chat: Chat, title: str) -> dict[str, Any]:
        """Give the chat a new title."""
        chat.title = title.strip() or chat.title
        chat.updated_at = utcnow()
        await session.flush()
        return ChatRead.model_validate(chat).model_dump(mode="json")

    async def delete_chat(self, session: AsyncSession, *, chat: Chat) -> None:
        """Delete the chat and its messages; replies in flight are stopped."""
        chats = ChatRepository(session)
        for message in await chats.in_flight_messages(chat.id):
            await self._on_stop_requested(str(message.id))
            with contextlib.suppress(Exception):
                await self.fanout.request_stop(str(message.id))
        await chats.delete_chat(chat)
        await session.flush()
        self.recent.forget(chat.id)
        try:
            await self.fanout.publish(str(chat.id), {"type": DELETED})
        except Exception:  # the streams still end at the subscriber's next reconnect (404)
            logger.warning("chat_deleted_publish_failed", chat_id=str(chat.id))

    # -- streams ----------------------------------------------------------------------------

    async def follow(
        self, *, chat_id: uuid.UUID, resume: ResumePoint | None
    ) -> AsyncIterator[Batch | None]:
        """A chat's events from the resume point on (None is a heartbeat)."""
        exits = contextlib.ExitStack()
        subscription = exits.enter_context(self.fanout.subscribe(str(chat_id)))
        try:
            cursor = StreamCursor()
            async with self.database.reading() as session:
                chats = ChatRepository(session)
                messages: Sequence[Message] = []
                if resume is not None:
                    messages = await chats.messages_from(
                        chat_id, first_id=resume.message_id, limit=_REPLAY_LIMIT
                    )
                    if messages and messages[0].id == resume.message_id:
                        cursor.resume_at(str(resume.message_id), resume.position)
                    else:
                        messages = []
                        resume = None
                if resume is None:
                    messages = await chats.in_flight_messages(chat_id)
                stored = [message_dict(message) for message in messages]
            replay = [(message, await self._content_now(message)) for message in stored]
        except BaseException:
            exits.close()
            raise
        async for batch in self._frames(subscription, exits, cursor=cursor, replay=replay):
            yield batch

    async def _content_now(self, message: dict[str, Any]) -> str:
        """The freshest content of a message: the live snapshot while it streams."""
        if message["status"] in ("pending", "streaming"):
            snapshot = await self.fanout.snapshot(str(message["id"]))
            if snapshot is not None and len(snapshot) >= len(message["content"]):
                return snapshot
        return str(message["content"])

    async def _replay_send(self, result: dict[str, Any]) -> AsyncIterator[Batch | None]:
        """The stream of an earlier send (same Idempotency-Key): its two messages, from the top."""
        chat_id = uuid.UUID(result["chat_id"])
        ids = [result["user_message"]["id"], result["agent_message"]["id"]]
        exits = contextlib.ExitStack()
        subscription = exits.enter_context(self.fanout.subscribe(str(chat_id)))
        try:
            async with self.database.reading() as session:
                messages = await ChatRepository(session).messages_by_ids(
                    chat_id, [uuid.UUID(i) for i in ids]
                )
                stored = [message_dict(message) for message in messages]
            replay = [(message, await self._content_now(message)) for message in stored]
        except BaseException:
            exits.close()
            raise
        frames = self._frames(
            subscription, exits, cursor=StreamCursor(only=set(ids)), replay=replay, until=ids[1]
        )
        async for batch in frames:
            yield batch

    @staticmethod
    def _ends_stream(event: dict[str, Any], cursor: StreamCursor, until: str | None) -> bool:
        """Whether a stream is over after this event: its chat was deleted, or the message it
        waited for is whole."""
        if event.get("type") == DELETED:
            return True
        return until is not None and cursor.is_finished(until)

    async def _frames(
        self,
        subscription: Subscription,
        exits: contextlib.ExitStack,
        *,
        cursor: StreamCursor,
        replay: list[tuple[dict[str, Any], str]],
        until: str | None = None,
    ) -> AsyncIterator[Batch | None]:
        """Replay, then live events; ends after `until` is whole (or when cut off).

        Events already queued when the subscriber gets to them go out in one batch: a subscriber
        that fell behind catches up with one write instead of one per event."""
        with exits:
            batch = [
                frame for message, content in replay for frame in cursor.replay(message, content)
            ]
            if batch:
                yield batch
            if until is not None and cursor.is_finished(until):
                return
            while True:
                try:
                    event = await subscription.next(self.settings.heartbeat_seconds)
                except TimeoutError:
                    yield None
                    continue
                except EOFError:
                    return
                batch = cursor.accept(event)
                finished = self._ends_stream(event, cursor, until)
                waiting = subscription.ready()
                while not finished and (queued := next(waiting, None)) is not None:
                    batch += cursor.accept(queued)
                    finished = self._ends_stream(queued, cursor, until)
                if batch:
                    yield batch
                if finished:
                    return
