"""What one simulated request does: timing, reply tokens and injected faults.

Per request, in order of precedence: `x-sim-*` request headers, `[sim:key=value]` markers in the
last user message (so a test can drive a fault end to end through chat), faults queued with
`POST /_sim/faults`, then the simulator's defaults.

Faults: `400`, `401`, `429`, `500`, `503` (an error answer before any token),
`disconnect-after:K` (K tokens, then the connection is cut), `stall-after:K` (K tokens, then
silence), `hang` (no answer at all).
A fault may end in `xN` (`429x2`): only the first N requests with the same body get it, so a
client's retry of the same request then succeeds.

Tool calls: `[sim:tool=NAME;args={...}]` markers in the last user message (several make parallel
calls) or an `x-sim-tool-call: NAME;args={...}` header make the model call tools the request
declares instead of answering; once the conversation ends with tool results, the reply quotes them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kibitz.simulator.config import SimulatorSettings

_MARKER = re.compile(r"\[sim:([a-z-]+)=([^\]\s]+)\]")
_FAULT = re.compile(
    r"^(?P<kind>400|401|429|500|503|hang|disconnect-after|stall-after)(?::(?P<arg>\d+))?(?:x(?P<times>\d+))?$"
)
_WORD = re.compile(r"\S+\s*")
# `NAME` or `NAME;args={...}`; the JSON object may hold spaces but not `}]`.
_TOOL_MARKER = re.compile(r"\[sim:tool=([^\];]+)(?:;args=(\{.*?\}))?\]", re.DOTALL)
_TOOL_SPEC = re.compile(r"^([^;]+)(?:;args=(\{.*\}))?$", re.DOTALL)
_FILLER = [
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
]


@dataclass(frozen=True)
class Fault:
    """An injected failure: its kind and, for the mid-stream ones, after how many tokens."""

    kind: str
    after_tokens: int = 0


@dataclass(frozen=True)
class Behaviour:
    """The resolved plan for one request."""

    ttft_seconds: float
    gap_seconds: float
    tokens: list[str]
    fault: Fault | None


class FaultQueue:
    """Faults queued for the next requests, and per-body counters of `xN` faults."""

    def __init__(self) -> None:
        self.queued: deque[str] = deque()
        self._seen: Counter[str] = Counter()

    def push(self, fault: str, times: int) -> None:
        """Give the next `times` requests this fault."""
        parse_fault(fault)  # raises ValueError when malformed
        self.queued.extend([fault] * times)

    def clear(self) -> None:
        """Forget queued faults and counters."""
        self.queued.clear()
        self._seen.clear()

    def applies(self, spec: str, fingerprint: str) -> Fault | None:
        """The fault the spec names, unless its `xN` budget for this body is spent."""
        match = _FAULT.match(spec.strip())
        if match is None:
            return None
        times = match.group("times")
        if times is not None:
            key = f"{spec}|{fingerprint}"
            self._seen[key] += 1
            if self._seen[key] > int(times):
                return None
        return Fault(match.group("kind"), int(match.group("arg") or 0))


@dataclass(frozen=True)
class ScriptedToolCall:
    """A tool the simulated model calls, with its arguments as JSON text."""

    name: str
    arguments: str


def scripted_tool_calls(headers: Mapping[str, str], last_user: str) -> list[ScriptedToolCall]:
    """Tool calls the header (first) or the message's markers script (ValueError when the
    arguments are not a JSON object)."""
    header = headers.get("x-sim-tool-call")
    if header:
        match = _TOOL_SPEC.match(header.strip())
        if match is None:
            raise ValueError("x-sim-tool-call must be NAME or NAME;args={...}")
        pairs = [match.groups()]
    else:
        pairs = _TOOL_MARKER.findall(last_user)
    calls = []
    for name, args in pairs:
        arguments = args or "{}"
        try:
            parsed = json.loads(arguments)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise ValueError("tool arguments must be a JSON object")
        calls.append(ScriptedToolCall(name.strip(), arguments))
    return calls


def tool_results_reply(results: list[tuple[str, str]]) -> str:
    """The answer once tools have run: each result quoted with its call id."""
    quoted = "; ".join(f"[{call_id}] {content.strip()}" for call_id, content in results)
    return f"Simulated answer from the tool results: {quoted}"


def parse_fault(spec: str) -> Fault:
    """Parse a fault spec (ValueError when malformed)."""
    match = _FAULT.match(spec.strip())
    if match is None:
        raise ValueError(f"unknown fault {spec!r}")
    return Fault(match.group("kind"), int(match.group("arg") or 0))


def markers_in(text: str) -> dict[str, str]:
    """`[sim:key=value]` markers found in a message."""
    return dict(_MARKER.findall(text))


def split_tokens(text: str) -> list[str]:
    """Split text into word tokens that keep their trailing space."""
    return _WORD.findall(text)


def count_tokens(text: str) -> int:
    """A stable stand-in for a tokenizer: whitespace-separated words."""
    return len(text.split())


def default_reply(*, model: str, temperature: Any, system: str, last_user: str) -> str:
    """A reply that shows what reached the wire, so tests can check it."""
    shown_system = system.strip() or "none"
    return (
        f"Simulated reply from {model} at temperature {temperature}. "
        f"System: {shown_system} You said: {last_user.strip()}"
    )


def resolve(
    *,
    settings: SimulatorSettings,
    headers: Mapping[str, str],
    last_user: str,
    reply: str,
    body: bytes,
    faults: FaultQueue,
) -> Behaviour:
    """Merge headers, markers, queued faults and defaults into one request's behaviour."""
    markers = markers_in(last_user)

    def pick(name: str) -> str | None:
        return headers.get(f"x-sim-{name}") or markers.get(name)

    ttft_ms = float(pick("ttft-ms") or settings.ttft_ms)
    gap_ms = float(pick("gap-ms") or settings.token_gap_ms())
    text = headers.get("x-sim-reply") or settings.reply or reply
    words = split_tokens(text) or ["ok"]
    wanted = pick("tokens") or settings.tokens
    if wanted is not None:
        count = max(1, int(wanted))
        words = [
            words[i] if i < len(words) else _FILLER[i % len(_FILLER)] + " " for i in range(count)
        ]
    fingerprint = hashlib.sha256(body).hexdigest()
    fault: Fault | None = None
    spec = pick("fault")
    if spec:
        fault = faults.applies(spec, fingerprint)
    elif faults.queued:
        fault = faults.applies(faults.queued.popleft(), fingerprint)
    return Behaviour(ttft_ms / 1000.0, gap_ms / 1000.0, words, fault)
