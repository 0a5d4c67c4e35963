"""What a chat process remembers of its chats' latest messages."""

from __future__ import annotations

import uuid

from kibitz.kit.ids import new_id
from kibitz.services.chat.recent_messages import RecentChat, RecentMessages
from kibitz.services.chat.repository import RecentMessage

TENANT, USER, AGENT = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def chat_with(*contents: str) -> RecentChat:
    """A chat whose messages (newest first) hold these contents."""
    messages = tuple(RecentMessage(new_id(), "user", text, "complete") for text in contents)
    return RecentChat(tenant_id=TENANT, user_id=USER, agent_id=AGENT, messages=messages)


def test_a_chat_is_only_found_by_its_own_user() -> None:
    recent = RecentMessages(chats=10, messages=10, chars=1000)
    chat_id = new_id()
    recent.put(chat_id, chat_with("hi"))
    assert recent.get(chat_id, tenant_id=TENANT, user_id=USER) is not None
    assert recent.get(chat_id, tenant_id=uuid.uuid4(), user_id=USER) is None
    assert recent.get(chat_id, tenant_id=TENANT, user_id=uuid.uuid4()) is None
    assert recent.get(new_id(), tenant_id=TENANT, user_id=USER) is None


def test_only_what_a_context_can_still_use_is_kept() -> None:
    recent = RecentMessages(chats=10, messages=3, chars=10)
    by_count, by_chars = new_id(), new_id()
    recent.put(by_count, chat_with("a", "b", "c", "d"))
    recent.put(by_chars, chat_with("1234", "5678", "901", "x"))
    kept = recent.get(by_count, tenant_id=TENANT, user_id=USER)
    assert kept is not None and [m.content for m in kept.messages] == ["a", "b", "c"]
    kept = recent.get(by_chars, tenant_id=TENANT, user_id=USER)
    assert kept is not None and [m.content for m in kept.messages] == ["1234", "5678"]


def test_the_least_recently_used_chat_is_dropped_first() -> None:
    recent = RecentMessages(chats=2, messages=10, chars=1000)
    first, second, third = new_id(), new_id(), new_id()
    recent.put(first, chat_with("1"))
    recent.put(second, chat_with("2"))
    assert recent.get(first, tenant_id=TENANT, user_id=USER) is not None  # used again
    recent.put(third, chat_with("3"))
    assert recent.get(second, tenant_id=TENANT, user_id=USER) is None
    assert recent.get(first, tenant_id=TENANT, user_id=USER) is not None
    assert recent.get(third, tenant_id=TENANT, user_id=USER) is not None


def test_a_finished_reply_replaces_its_pending_entry_and_a_deleted_chat_is_forgotten() -> None:
    recent = RecentMessages(chats=10, messages=10, chars=1000)
    chat_id, reply_id, user_id = new_id(), new_id(), new_id()
    pending = (
        RecentMessage(reply_id, "agent", "", "pending"),
        RecentMessage(user_id, "user", "hi", "complete"),
    )
    recent.put(chat_id, RecentChat(TENANT, USER, AGENT, pending))
    recent.reply_finished(chat_id, reply_id, content="hello", status="complete")
    recent.reply_finished(new_id(), reply_id, content="elsewhere", status="failed")  # ignored
    kept = recent.get(chat_id, tenant_id=TENANT, user_id=USER)
    assert kept is not None
    assert [m[1:] for m in kept.messages] == [
        ("agent", "hello", "complete"),
        ("user", "hi", "complete"),
    ]
    recent.forget(chat_id)
    assert recent.get(chat_id, tenant_id=TENANT, user_id=USER) is None


def test_remembering_nothing_turns_it_off() -> None:
    recent = RecentMessages(chats=0, messages=10, chars=1000)
    chat_id = new_id()
    recent.put(chat_id, chat_with("hi"))
    assert recent.get(chat_id, tenant_id=TENANT, user_id=USER) is None


def test_a_process_contradicted_again_and_again_stops_remembering() -> None:
    recent = RecentMessages(chats=10, messages=10, chars=1000)
    chat_id = new_id()
    recent.put(chat_id, chat_with("hi"))
    for _ in range(9):
        recent.checked(agreed=False)
    recent.checked(agreed=True)  # one agreement starts the count again
    for _ in range(9):
        recent.checked(agreed=False)
    assert recent.get(chat_id, tenant_id=TENANT, user_id=USER) is not None
    recent.checked(agreed=False)
    assert recent.get(chat_id, tenant_id=TENANT, user_id=USER) is None
    recent.put(chat_id, chat_with("hi"))
    assert recent.get(chat_id, tenant_id=TENANT, user_id=USER) is None
