"""The offline echo provider."""

from __future__ import annotations

from kibitz.services.agents.providers.base import CompletionRequest, StreamEnd, TextDelta, Turn
from kibitz.services.agents.providers.echo import LABEL, EchoProvider


async def test_echo_streams_the_last_user_message_word_by_word() -> None:
    request = CompletionRequest(
        model="echo",
        instructions="ignored",
        temperature=1.0,
        messages=[
            Turn("user", "first"),
            Turn("assistant", "reply"),
            Turn("user", "  say  it back "),
        ],
    )
    items = [item async for item in EchoProvider(word_delay_seconds=0).stream(request)]
    assert items[:-1] == [TextDelta("say  "), TextDelta("it "), TextDelta("back")]
    assert items[-1] == StreamEnd(
        input_tokens=5, output_tokens=3, finish_reason="stop", model="echo"
    )


def test_echo_is_labelled_as_a_demo() -> None:
    assert "demo" in LABEL
