"""What a later agent of a turn is asked from: the answers before it, added to the user's
message with their agents' names, so the conversation still ends with the user."""

from __future__ import annotations

from kibitz.services.chat.turns.context import with_answer

HISTORY = [
    {"role": "user", "content": "earlier"},
    {"role": "assistant", "content": "earlier answer"},
    {"role": "user", "content": "What now?"},
]


def test_each_answer_is_added_to_the_last_user_message_with_its_agents_name() -> None:
    after_one = with_answer(HISTORY, "Critic", "  Be careful.  ")
    after_two = with_answer(after_one, "Poet", "Roses.")
    assert after_two[:2] == HISTORY[:2]
    assert after_two[-1]["role"] == "user"
    assert after_two[-1]["content"] == (
        "What now?"
        "\n\n---\nCritic (another agent in this chat) answered:\n\nBe careful."
        "\n\n---\nPoet (another agent in this chat) answered:\n\nRoses."
    )
    assert HISTORY[-1]["content"] == "What now?"  # the earlier context is left as it was


def test_an_empty_answer_adds_nothing_and_a_nameless_agent_is_another_agent() -> None:
    assert with_answer(HISTORY, "Critic", "   ") == HISTORY
    assert with_answer(HISTORY, "", "x")[-1]["content"].endswith(
        "\n\n---\nAnother agent answered:\n\nx"
    )
