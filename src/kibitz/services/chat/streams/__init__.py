"""Live streams: the cursor (what one subscriber has seen), the fan-out (every subscriber of a
chat, wherever connected) and following a chat."""

from kibitz.services.chat.streams.cursor import (
    COMPLETED,
    CREATED,
    DELETED,
    DELTA,
    END,
    FAILED,
    Batch,
    Frame,
    ResumePoint,
    StreamCursor,
    terminal_event_name,
)

__all__ = [
    "COMPLETED",
    "CREATED",
    "DELETED",
    "DELTA",
    "END",
    "FAILED",
    "Batch",
    "Frame",
    "ResumePoint",
    "StreamCursor",
    "terminal_event_name",
]
