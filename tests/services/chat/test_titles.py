"""A chat's title is plain text: the words of the first message, without its Markdown."""

from __future__ import annotations

import pytest
from tests.services.chat.world import World

from kibitz.services.chat.titles.plain import plain_text


@pytest.mark.parametrize(
    ("markdown", "text"),
    [
        ("# **Fix** the [login bug](https://example.com) now", "Fix the login bug now"),
        ("```python\nprint('hi')\n```", "print('hi')"),
        ("> a *quoted* line", "a quoted line"),
        ("- one\n- two\n1. three", "one two three"),
        ("Title\n=====\nbody", "Title body"),
        ("<b>bold</b> &amp; `code`", "bold & code"),
        ("![a diagram](d.png) of ~~it~~ all", "a diagram of ~~it~~ all"),
        ("snake_case and 2*3", "snake_case and 2*3"),
        ("plain   words\n\nonly", "plain words only"),
        ("***", ""),
    ],
)
def test_markdown_becomes_the_text_a_reader_sees(markdown: str, text: str) -> None:
    assert plain_text(markdown) == text


async def test_a_new_chats_title_has_no_markdown_syntax(world: World) -> None:
    alice = await world.member()
    response = await world.send(alice, "## Why does `git rebase` **lose** my [commits](x)?")
    assert response.status_code == 201, response.text
    chat = await world.http.get(
        world.url(f"/chat/chats/{response.json()['chat_id']}"), headers=alice.headers
    )
    assert chat.json()["title"] == "Why does git rebase lose my commits?"
