"""The shared field types: no control characters in text, numbers only as numbers."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from kibitz.kit.inputs import MultiLineText, SingleLineText, StrictFloat, StrictInt


class Form(BaseModel):
    name: SingleLineText = "x"
    text: MultiLineText = "x"
    temperature: StrictFloat = 0.5
    count: StrictInt = 1


@pytest.mark.parametrize(
    "value", ["a\x00b", "tab\there", "new\nline", "\x1b[31mred", "del\x7f", "\x85"]
)
def test_a_name_refuses_control_characters(value: str) -> None:
    with pytest.raises(ValidationError, match="control characters"):
        Form(name=value)


@pytest.mark.parametrize("value", ["a\x00b", "bell\x07", "\x1b[2J", "form\x0cfeed"])
def test_long_text_refuses_control_characters_but_newline_and_tab(value: str) -> None:
    with pytest.raises(ValidationError, match="control characters"):
        Form(text=value)


def test_printable_text_and_layout_pass() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # joined by zero-width joiners
    form = Form(name=f"Ada Lovelace {family} \u05e9\u05dc\u05d5\u05dd", text="line\r\nnext\ttab")
    assert form.name.endswith("\u05e9\u05dc\u05d5\u05dd") and form.text == "line\r\nnext\ttab"


@pytest.mark.parametrize("value", ["0.5", True, False, None, "1"])
def test_numbers_are_strict(value: object) -> None:
    with pytest.raises(ValidationError):
        Form(temperature=value)
    with pytest.raises(ValidationError):
        Form(count=value)


def test_a_whole_number_is_a_float_too() -> None:
    assert Form.model_validate({"temperature": 1, "count": 3}).temperature == 1.0
