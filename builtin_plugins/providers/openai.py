"""The ``openai`` provider: Chat Completions, streamed (OpenAI and compatible servers).

``POST {base_url}/chat/completions`` with ``stream: true`` and
``stream_options.include_usage``; the system prompt is the first message;
tool results are ``tool`` messages. Usage follows the Anthropic convention
the core prices with: ``input_tokens`` = ``prompt_tokens`` minus the cached
part, which goes to ``cache_read_tokens``.

Options: ``max_tokens_param`` (``"max_completion_tokens"`` for models that
refuse ``max_tokens``), ``connect_timeout_s``, ``read_timeout_s``.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from exoclaw_hooks import (
    LLMRequest,
    Message,
    ProviderError,
    StreamEnd,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolUseEvent,
    Usage,
    hookimpl,
)

from ._http import Decoder, JsonLoader, SSEProvider, error_message, short
from .sse import SSEEvent

DEFAULT_BASE_URL = "https://api.openai.com/v1"
#: in-stream error types / codes worth retrying
RETRYABLE_ERRORS = frozenset({"server_error", "rate_limit_exceeded", "rate_limit_error", "service_unavailable"})


@hookimpl
def register_providers(register, host):
    # zero-config: chosen when $OPENAI_API_KEY is set (after anthropic)
    register("openai", lambda settings: OpenAIProvider(settings, host), default_model="gpt-4o-mini", key_env="OPENAI_API_KEY", auto=20)


def _message(message: Message) -> list[dict[str, Any]]:
    if message.role == "tool":
        return [
            {"role": "tool", "tool_call_id": r.tool_use_id,
             "content": f"Error: {r.content}" if r.is_error else r.content}
            for r in message.tool_results
        ]
    if message.role == "user":
        return [{"role": "user", "content": message.content}]
    if not message.tool_calls:
        return [{"role": "assistant", "content": message.content}] if message.content else []
    calls = [
        {"id": c.id, "type": "function",
         "function": {"name": c.name, "arguments": json.dumps(dict(c.input), ensure_ascii=False)}}
        for c in message.tool_calls
    ]
    return [{"role": "assistant", "content": message.content or None, "tool_calls": calls}]


def to_messages(system: str, messages: Iterable[Message]) -> list[dict[str, Any]]:
    """The conversation in Chat Completions' shape, the system prompt first."""
    out: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for message in messages:
        out += _message(message)
    return out


class OpenAIDecoder(Decoder):
    """chat.completion.chunk … (finish_reason) … usage-only chunk, ``[DONE]``."""

    def __init__(self) -> None:
        self.tools: dict[int, dict[str, Any]] = {}  # index -> id, name, argument pieces
        self.stop_reason: str | None = None
        self.usage: dict[str, Any] = {}

    def feed(self, sse: SSEEvent, load: JsonLoader) -> list[StreamEvent]:
        if sse.data.strip() == "[DONE]":
            self.done = True
            return [*self._flush(), StreamEnd(self.stop_reason, self._usage())]
        data = load(sse.data)
        if data.get("error"):
            error = data["error"] if isinstance(data["error"], dict) else {}
            raise ProviderError(
                short(error_message(data) or "error event in stream"),
                retryable=bool({error.get("type"), error.get("code")} & RETRYABLE_ERRORS),
            )
        if isinstance(data.get("usage"), dict):
            self.usage = data["usage"]
        out: list[StreamEvent] = []
        for choice in data.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue  # n > 1 is never asked for
            delta = choice.get("delta") or {}
            if delta.get("content"):
                out.append(TextDelta(delta["content"]))
            for position, piece in enumerate(delta.get("tool_calls") or ()):
                tool = self.tools.setdefault(piece.get("index", position), {"id": None, "name": "", "args": []})
                function = piece.get("function") or {}
                tool["id"] = tool["id"] or piece.get("id")
                tool["name"] = tool["name"] or function.get("name") or ""
                if function.get("arguments"):
                    tool["args"].append(function["arguments"])
            if choice.get("finish_reason"):
                self.stop_reason = choice["finish_reason"]
                out += self._flush()
        return out

    def _flush(self) -> list[StreamEvent]:
        """Every accumulated tool call, in index order (its arguments are complete)."""
        events: list[StreamEvent] = []
        for index in sorted(self.tools):
            tool = self.tools[index]
            raw = "".join(tool["args"])
            try:
                value = json.loads(raw) if raw.strip() else {}
            except ValueError:
                raise ProviderError(f"tool call {tool['name']} has invalid JSON arguments") from None
            if not isinstance(value, dict):
                raise ProviderError(f"tool call {tool['name']} arguments are not a JSON object")
            events.append(ToolUseEvent(ToolCall(id=tool["id"] or f"call_{index}", name=tool["name"], input=value)))
        self.tools.clear()
        return events

    def _usage(self) -> Usage:
        u = self.usage
        details = u.get("prompt_tokens_details") or {}
        cached = details.get("cached_tokens") or 0
        return Usage(
            input_tokens=max((u.get("prompt_tokens") or 0) - cached, 0),
            output_tokens=u.get("completion_tokens") or 0,
            cache_read_tokens=cached,
        )


class OpenAIProvider(SSEProvider):
    name = "openai"

    def url(self) -> str:
        return (self.settings.base_url or DEFAULT_BASE_URL).rstrip("/") + "/chat/completions"

    def headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "text/event-stream"}
        if self.settings.api_key:
            headers["authorization"] = f"Bearer {self.settings.api_key}"
        return headers

    def body(self, request: LLMRequest) -> dict[str, Any]:
        max_tokens_param = str(self.settings.options.get("max_tokens_param", "max_tokens"))
        body: dict[str, Any] = {
            "model": self.model(request),
            max_tokens_param: request.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": to_messages(request.system, request.messages),
        }
        if request.tools:
            body["tools"] = [
                {"type": "function",
                 "function": {"name": t.name, "description": t.description, "parameters": dict(t.input_schema)}}
                for t in request.tools
            ]
        return body

    def decoder(self) -> OpenAIDecoder:
        return OpenAIDecoder()
