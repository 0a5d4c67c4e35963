"""What a later agent of a turn is asked from: the conversation, with the answers given before
it in this turn added to the user's message.

Why in the user's message, not as assistant turns of their own: a conversation must still end
with the user (Anthropic reads a closing assistant turn as the start of its own answer, and
OpenAI's models answer the last speaker), and each agent should know who said what. So every
answer of the turn is appended to the last user message, labelled with its agent's name."""

from __future__ import annotations


def answer_block(name: str, content: str) -> str:
    """One earlier answer of the turn, as a later agent reads it."""
    who = f"{name.strip()} (another agent in this chat)" if name.strip() else "Another agent"
    return f"\n\n---\n{who} answered:\n\n{content.strip()}"


def with_answer(context: list[dict[str, str]], name: str, content: str) -> list[dict[str, str]]:
    """The context of the next agent of the turn: `content`, the answer just given by `name`,
    added to the last user message (an empty answer adds nothing)."""
    if not content.strip():
        return list(context)
    last = len(context) - 1
    while last >= 0 and context[last].get("role") != "user":
        last -= 1
    if last < 0:
        return [*context, {"role": "user", "content": answer_block(name, content).lstrip()}]
    folded = dict(context[last])
    folded["content"] = folded.get("content", "") + answer_block(name, content)
    return [*context[:last], folded, *context[last + 1 :]]
