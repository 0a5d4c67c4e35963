"""The turn plan: who answers a message in each mode, and `@Name` mentions."""

from __future__ import annotations

import uuid

import pytest

from kibitz.services.chat.errors import MentionNotResolved
from kibitz.services.chat.turns.plan import (
    Participant,
    mentioned,
    plan_turn,
    resolve_mentions,
)

SIM = Participant(uuid.UUID(int=1), "Sim")
CRITIC = Participant(uuid.UUID(int=2), "Critic")
REVIEWER = Participant(uuid.UUID(int=3), "Code Reviewer")
CHAT = [SIM, CRITIC, REVIEWER]


def test_direct_without_mentions_is_answered_by_the_default_agent() -> None:
    assert plan_turn("hello there", CHAT, "direct") == [SIM.agent_id]


def test_direct_with_one_mention_is_answered_by_that_agent_only() -> None:
    assert plan_turn("@critic what do you think?", CHAT, "direct") == [CRITIC.agent_id]


def test_several_mentions_answer_in_the_order_first_named_each_once() -> None:
    content = "@CodeReviewer then @SIM, and @codereviewer again"
    assert plan_turn(content, CHAT, "direct") == [REVIEWER.agent_id, SIM.agent_id]


def test_a_panel_is_every_participant_in_order_and_an_orchestrated_turn_the_first() -> None:
    assert plan_turn("@critic hi", CHAT, "panel") == [p.agent_id for p in CHAT]
    assert plan_turn("hi", CHAT, "orchestrated") == [SIM.agent_id]


def test_an_email_address_or_a_bare_at_is_not_a_mention() -> None:
    assert mentioned("write to bob@critic.example or @ nobody") == []
    assert mentioned("(@Critic), @sim.") == ["critic", "sim"]


def test_an_unknown_name_is_a_422_naming_the_choices() -> None:
    with pytest.raises(MentionNotResolved) as raised:
        resolve_mentions("@bob hi", CHAT)
    assert raised.value.status == 422
    assert raised.value.extra["reason"] == "unknown"
    assert raised.value.extra["choices"] == ["Sim", "Critic", "CodeReviewer"]
    assert "@Critic" in str(raised.value)


def test_a_name_two_participants_share_is_ambiguous() -> None:
    twins = [SIM, Participant(uuid.UUID(int=9), "sim")]
    with pytest.raises(MentionNotResolved) as raised:
        plan_turn("@Sim?", twins, "direct")
    assert raised.value.extra["reason"] == "ambiguous"
    # Unambiguous when nobody names it.
    assert plan_turn("hi", twins, "direct") == [SIM.agent_id]
