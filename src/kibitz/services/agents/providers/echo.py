"""The offline demo provider: streams the user's last message back, word by word."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

from kibitz.services.agents.providers.base import (
    CompletionRequest,
    StreamEnd,
    StreamItem,
    TextDelta,
)

_WORD = re.compile(r"\S+\s*")
LABEL = "Echo (offline demo: repeats your message)"


class EchoProvider:
    """Needs no key and no network: what a fresh install offers."""

    name = "echo"

    def __init__(self, *, word_delay_seconds: float = 0.03) -> None:
        self.word_delay_seconds = word_delay_seconds

    async def stream(
        self, request: CompletionRequest, *, streamed: bool = True
    ) -> AsyncIterator[StreamItem]:
        """The last user message, one word at a time."""
        last_user = next(
            (turn.content for turn in reversed(request.messages) if turn.role == "user"), ""
        )
        words = _WORD.findall(last_user.strip())
        for index, word in enumerate(words):
            if index and streamed and self.word_delay_seconds > 0:
                await asyncio.sleep(self.word_delay_seconds)
            yield TextDelta(word)
        yield StreamEnd(
            input_tokens=sum(len(turn.content.split()) for turn in request.messages),
            output_tokens=len(words),
            finish_reason="stop",
            model="echo",
        )
