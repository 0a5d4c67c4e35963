"""OpenAI chat completions through the official SDK; also OpenAI-compatible servers (`custom`)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import openai

from kibitz.kit.http.sse import read_to_end, sse_batches
from kibitz.services.agents.providers.base import (
    CompletionRequest,
    ProviderError,
    StreamEnd,
    StreamItem,
    StreamStart,
    TextDelta,
    error_for_status,
    estimate_tokens,
)


def map_openai_error(exc: Exception) -> ProviderError:
    """Classify an SDK (or transport) error; never copies upstream text, which may echo the key."""
    if isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException):
        return ProviderError("timeout", "The model provider timed out.")
    if isinstance(exc, openai.APIStatusError):
        return error_for_status(exc.status_code, exc.response.headers)
    return ProviderError("unavailable", "The model provider could not be reached.")


_SDK_ERRORS = (openai.APIError, httpx2.HTTPError)


class OpenAIChat:
    """Chat completions: streamed with `stream_options.include_usage`, or one whole answer."""

    def __init__(self, client: openai.AsyncOpenAI, *, name: str = "openai") -> None:
        self.client = client
        self.name = name

    def _body(self, request: CompletionRequest) -> dict[str, Any]:
        messages: list[dict[str, str]] = []
        if request.instructions:
            messages.append({"role": "system", "content": request.instructions})
        messages.extend({"role": turn.role, "content": turn.content} for turn in request.messages)
        body: dict[str, Any] = {
            "model": request.model,
            "messages": messages,
            "temperature": request.temperature,
        }
        if request.max_output_tokens:
            body["max_completion_tokens"] = request.max_output_tokens
        return body

    async def stream(
        self, request: CompletionRequest, *, streamed: bool = True
    ) -> AsyncIterator[StreamItem]:
        """Text deltas, then usage and finish reason."""
        body = self._body(request)
        if not streamed:
            try:
                completion = await self.client.chat.completions.create(**body)
            except _SDK_ERRORS as exc:
                raise map_openai_error(exc) from None
            choice = completion.choices[0] if completion.choices else None
            text = (choice.message.content or "") if choice else ""
            if text:
                yield TextDelta(text)
            usage = completion.usage
            yield StreamEnd(
                input_tokens=usage.prompt_tokens if usage else 0,
                output_tokens=usage.completion_tokens if usage else estimate_tokens(text),
                finish_reason=(choice.finish_reason if choice else None) or "stop",
                model=completion.model or request.model,
            )
            return
        # Raw SSE through the SDK (its request, auth and errors; our parsing): see kit/http/sse.py.
        # The SDK's documented custom-request call (`client.post` to an httpx2 response) skips
        # `create()`'s transform of typed params (~1 ms of CPU per call); the JSON is the same.
        finish_reason = "stop"
        model = request.model
        input_tokens: int | None = None
        output_tokens: int | None = None
        produced: list[str] = []
        try:
            response = await self.client.post(
                "/chat/completions",
                cast_to=httpx2.Response,
                body={**body, "stream": True, "stream_options": {"include_usage": True}},
                options={"security": {"bearer_auth": True}},
                stream=True,
            )
            # Closing the response on the way out closes upstream: no tokens paid for nobody.
            async with contextlib.aclosing(response):
                yield StreamStart()
                batches = sse_batches(response.aiter_bytes())
                async for batch in batches:
                    texts: list[str] = []
                    done = False
                    for _, data in batch:
                        if data.startswith("[DONE]"):
                            done = True
                            break
                        chunk = json.loads(data)
                        if chunk.get("error"):
                            raise ProviderError(
                                "unavailable", "The model provider failed mid-stream."
                            )
                        model = chunk.get("model") or model
                        usage = chunk.get("usage")
                        if usage:
                            input_tokens = usage.get("prompt_tokens")
                            output_tokens = usage.get("completion_tokens")
                        for choice in chunk.get("choices") or ():
                            content = (choice.get("delta") or {}).get("content")
                            if content:
                                texts.append(content)
                            if choice.get("finish_reason"):
                                finish_reason = choice["finish_reason"]
                    produced.extend(texts)
                    for index, text in enumerate(texts):
                        yield TextDelta(text, more=index < len(texts) - 1)
                    if done:
                        await read_to_end(batches)
                        break
        except _SDK_ERRORS as exc:
            raise map_openai_error(exc) from None
        except ValueError:  # a chunk that is not JSON
            raise ProviderError(
                "unavailable", "The model provider sent a malformed stream."
            ) from None
        text = "".join(produced)
        yield StreamEnd(
            input_tokens=input_tokens
            if input_tokens is not None
            else sum(estimate_tokens(turn.content) for turn in request.messages),
            output_tokens=output_tokens if output_tokens is not None else estimate_tokens(text),
            finish_reason=finish_reason,
            model=model,
        )
