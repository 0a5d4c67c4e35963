"""How the simulator decides timing, reply and faults for one request."""

from __future__ import annotations

import pytest

from kibitz.simulator.behaviour import (
    Fault,
    FaultQueue,
    ScriptedToolCall,
    markers_in,
    parse_fault,
    resolve,
    scripted_tool_calls,
    split_tokens,
)
from kibitz.simulator.config import SimulatorSettings


def test_markers_and_faults_parse() -> None:
    assert markers_in("hi [sim:tokens=5] [sim:fault=429x2]") == {"tokens": "5", "fault": "429x2"}
    assert parse_fault("disconnect-after:3") == Fault("disconnect-after", 3)
    assert parse_fault("hang") == Fault("hang", 0)
    with pytest.raises(ValueError):
        parse_fault("teapot")


def test_headers_win_over_markers_and_markers_over_defaults() -> None:
    settings = SimulatorSettings(ttft_ms=50, gap_ms=10)
    behaviour = resolve(
        settings=settings,
        headers={"x-sim-ttft-ms": "5"},
        last_user="x [sim:ttft-ms=7] [sim:gap-ms=3] [sim:tokens=4]",
        reply="one two",
        body=b"{}",
        faults=FaultQueue(),
    )
    assert behaviour.ttft_seconds == 0.005 and behaviour.gap_seconds == 0.003
    assert len(behaviour.tokens) == 4 and behaviour.tokens[:2] == ["one ", "two"]
    assert SimulatorSettings(tokens_per_second=200).token_gap_ms() == 5


def test_a_counted_fault_hits_only_the_first_n_identical_requests() -> None:
    faults = FaultQueue()
    settings = SimulatorSettings()

    def fault_for(body: bytes) -> Fault | None:
        return resolve(
            settings=settings,
            headers={},
            last_user="[sim:fault=500x2]",
            reply="r",
            body=body,
            faults=faults,
        ).fault

    assert [fault_for(b"a"), fault_for(b"a"), fault_for(b"a")] == [Fault("500"), Fault("500"), None]
    assert fault_for(b"b") == Fault("500")


def test_queued_faults_apply_to_the_next_requests() -> None:
    faults = FaultQueue()
    faults.push("429", 2)
    kinds = [
        resolve(
            settings=SimulatorSettings(),
            headers={},
            last_user="",
            reply="r",
            body=b"",
            faults=faults,
        ).fault
        for _ in range(3)
    ]
    assert kinds == [Fault("429"), Fault("429"), None]


def test_tokens_keep_their_spacing() -> None:
    assert "".join(split_tokens("a  b\nc")) == "a  b\nc"


def test_tool_call_markers_script_parallel_calls_and_the_header_wins() -> None:
    text = 'a [sim:tool=ask_x;args={"task": "two words"}] b [sim:tool=ask_y]'
    assert scripted_tool_calls({}, text) == [
        ScriptedToolCall("ask_x", '{"task": "two words"}'),
        ScriptedToolCall("ask_y", "{}"),
    ]
    header = {"x-sim-tool-call": 'ask_z;args={"n": 1}'}
    assert scripted_tool_calls(header, text) == [ScriptedToolCall("ask_z", '{"n": 1}')]
    assert scripted_tool_calls({}, "no markers") == []


def test_tool_call_arguments_must_be_a_json_object() -> None:
    with pytest.raises(ValueError, match="JSON object"):
        scripted_tool_calls({"x-sim-tool-call": "ask_x;args={bad}"}, "")
    with pytest.raises(ValueError, match="JSON object"):
        scripted_tool_calls({}, '[sim:tool=ask_x;args={"a": }]')
