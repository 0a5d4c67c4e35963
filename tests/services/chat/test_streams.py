"""The stream cursor: resumable ids, replay then live, never a gap or a duplicate."""

from __future__ import annotations

import uuid

from kibitz.services.chat.streams import Frame, ResumePoint, StreamCursor

MID = str(uuid.uuid4())


def agent_message(status: str = "streaming", content: str = "") -> dict[str, object]:
    return {"id": MID, "sender": "agent", "status": status, "content": content}


def delta(offset: int, text: str) -> dict[str, object]:
    return {"type": "message.delta", "message_id": MID, "offset": offset, "content": text}


def text_of(frames: list[Frame]) -> str:
    return "".join(str(f.data["content"]) for f in frames if f.event == "message.delta")


def test_resume_point_reads_positions_and_ends() -> None:
    assert ResumePoint.parse(f"{MID}:12") == ResumePoint(uuid.UUID(MID), 12)
    assert ResumePoint.parse(f"{MID}:end") == ResumePoint(uuid.UUID(MID), None)
    assert ResumePoint.parse("garbage") is None
    assert ResumePoint.parse(f"{MID}:-3") is None
    assert ResumePoint.parse(None) is None


def test_delta_ids_name_the_characters_delivered() -> None:
    cursor = StreamCursor()
    frames = cursor.created(agent_message("pending")) + cursor.accept(delta(0, "Hello "))
    frames += cursor.accept(delta(6, "world"))
    assert [f.id for f in frames] == [f"{MID}:0", f"{MID}:6", f"{MID}:11"]


def test_live_deltas_already_replayed_are_dropped_or_trimmed() -> None:
    cursor = StreamCursor()
    replayed = cursor.replay(agent_message(content="Hello wo"), "Hello wo")
    assert text_of(replayed) == "Hello wo"
    live = cursor.accept(delta(0, "Hello ")) + cursor.accept(delta(6, "world"))
    assert text_of(live) == "rld"
    assert live[-1].data["offset"] == 8


def test_completion_sends_what_is_missing_then_the_end_once() -> None:
    cursor = StreamCursor()
    cursor.replay(agent_message(content="Hel"), "Hel")
    frames = cursor.accept(
        {"type": "message.completed", "message": agent_message("complete", "Hello")}
    )
    assert [f.event for f in frames] == ["message.delta", "message.completed"]
    assert text_of(frames) == "lo"
    assert (
        cursor.accept({"type": "message.completed", "message": agent_message("complete", "Hello")})
        == []
    )
    assert cursor.accept(delta(5, "!")) == []


def test_resuming_mid_message_sends_only_the_rest() -> None:
    cursor = StreamCursor()
    cursor.resume_at(MID, 6)
    frames = cursor.replay(agent_message("failed", "Hello world"), "Hello world")
    assert text_of(frames) == "world"
    assert frames[-1].event == "message.failed"


def test_a_resumed_finished_message_sends_nothing() -> None:
    cursor = StreamCursor()
    cursor.resume_at(MID, None)
    assert cursor.replay(agent_message("complete", "Hello"), "Hello") == []


def test_user_messages_arrive_whole_in_their_created_event() -> None:
    cursor = StreamCursor()
    user = {"id": str(uuid.uuid4()), "sender": "user", "status": "complete", "content": "Hi"}
    frames = cursor.replay(user, "Hi")
    assert [(f.event, f.data["content"]) for f in frames] == [("message.created", "Hi")]
    assert frames[0].id.endswith(":end")


def test_a_filtered_cursor_ignores_other_messages() -> None:
    cursor = StreamCursor(only={"other"})
    assert cursor.accept(delta(0, "x")) == []


def test_a_filtered_cursor_follows_the_delegated_answers_of_its_replies() -> None:
    orchestrator, other = str(uuid.uuid4()), str(uuid.uuid4())
    cursor = StreamCursor(only={orchestrator})
    asked = {**agent_message("pending"), "parent_id": orchestrator, "delegated": True}
    elsewhere = {**asked, "id": str(uuid.uuid4()), "parent_id": other}
    frames = cursor.accept({"type": "message.created", "message": asked})
    frames += cursor.accept(delta(0, "maps"))
    frames += cursor.accept({"type": "message.created", "message": elsewhere})
    frames += cursor.accept(
        {"type": "message.completed", "message": {**asked, "status": "complete", "content": "maps"}}
    )
    assert [(f.event, f.id) for f in frames] == [
        ("message.created", f"{MID}:0"),
        ("message.delta", f"{MID}:4"),
        ("message.completed", f"{MID}:end"),
    ]
    # A reply to the orchestrator's reply that is not delegated (a branch) is not followed.
    branch = {**agent_message("pending"), "id": str(uuid.uuid4()), "parent_id": orchestrator}
    assert cursor.accept({"type": "message.created", "message": branch}) == []


def test_frames_render_as_sse_with_an_id() -> None:
    frame = Frame("message.delta", f"{MID}:1", {"content": "x"})
    assert frame.sse() == f'id: {MID}:1\nevent: message.delta\ndata: {{"content":"x"}}\n\n'.encode()
