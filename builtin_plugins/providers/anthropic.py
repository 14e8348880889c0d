"""The ``anthropic`` provider: the Messages API, streamed.

``POST {base_url}/v1/messages`` with ``stream: true``; the system prompt is the
top-level ``system`` string; tool results travel in ``user`` messages, and
consecutive messages of one role are merged (the API wants roles to
alternate). Usage: ``input_tokens`` excludes cache reads and writes, which
are counted in ``cache_read_tokens`` / ``cache_write_tokens``.
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

from ._http import Decoder, JsonLoader, SSEProvider, short
from .sse import SSEEvent

DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
#: in-stream error types worth retrying
RETRYABLE_TYPES = frozenset({"overloaded_error", "rate_limit_error", "api_error"})


@hookimpl
def register_providers(register, host):
    # zero-config: chosen when $ANTHROPIC_API_KEY is set (before openai)
    register("anthropic", lambda settings: AnthropicProvider(settings, host), default_model="claude-sonnet-4-5", key_env="ANTHROPIC_API_KEY", auto=10)


def _blocks(message: Message) -> list[dict[str, Any]]:
    """A message as a list of Anthropic content blocks."""
    if message.role == "tool":
        return [
            {"type": "tool_result", "tool_use_id": r.tool_use_id, "content": r.content, "is_error": r.is_error}
            for r in message.tool_results
        ]
    blocks: list[dict[str, Any]] = [{"type": "text", "text": message.content}] if message.content else []
    blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": dict(c.input)} for c in message.tool_calls]
    return blocks


def to_messages(messages: Iterable[Message]) -> list[dict[str, Any]]:
    """The conversation in the Messages API's shape, roles alternating."""
    out: list[dict[str, Any]] = []
    for message in messages:
        role = "assistant" if message.role == "assistant" else "user"
        if message.role == "assistant" and not message.content and not message.tool_calls:
            continue  # the API refuses an empty assistant message
        simple = message.role == "user"
        content: Any = message.content if simple else _blocks(message)
        if out and out[-1]["role"] == role:
            prev = out[-1]["content"]
            prev = [{"type": "text", "text": prev}] if isinstance(prev, str) else prev
            if isinstance(content, str):
                content = [{"type": "text", "text": content}] if content else []
            out[-1]["content"] = prev + content
        else:
            out.append({"role": role, "content": content})
    return out


class AnthropicDecoder(Decoder):
    """message_start … content_block_* … message_delta, message_stop."""

    def __init__(self) -> None:
        self.usage: dict[str, int] = {}
        self.stop_reason: str | None = None
        self.tools: dict[int, dict[str, Any]] = {}  # block index -> id, name, json pieces
        self.message_id: str | None = None

    def _take_usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            for key, value in usage.items():
                if isinstance(value, int) and not isinstance(value, bool):
                    self.usage[key] = value  # message_delta counts are cumulative: overwrite

    def feed(self, sse: SSEEvent, load: JsonLoader) -> list[StreamEvent]:
        kind = sse.event
        if kind == "ping" or (kind is None and not sse.data):
            return []
        data = load(sse.data)
        kind = data.get("type", kind)
        if kind == "content_block_delta":
            delta = data["delta"]
            if delta.get("type") == "text_delta":
                return [TextDelta(delta["text"])] if delta["text"] else []
            if delta.get("type") == "input_json_delta" and data["index"] in self.tools:
                self.tools[data["index"]]["json"].append(delta["partial_json"])
            return []
        if kind == "content_block_start":
            block = data["content_block"]
            if block.get("type") == "tool_use":
                self.tools[data["index"]] = {"id": block["id"], "name": block["name"], "json": [],
                                             "input": block.get("input") or {}}
            elif block.get("type") == "text" and block.get("text"):
                return [TextDelta(block["text"])]
            return []
        if kind == "content_block_stop":
            tool = self.tools.pop(data["index"], None)
            return [ToolUseEvent(self._tool_call(tool))] if tool else []
        if kind == "message_start":
            message = data["message"]
            self.message_id = message.get("id")
            self._take_usage(message.get("usage"))
        elif kind == "message_delta":
            self.stop_reason = data.get("delta", {}).get("stop_reason") or self.stop_reason
            self._take_usage(data.get("usage"))
        elif kind == "message_stop":
            self.done = True
            return [StreamEnd(self.stop_reason, self._usage())]
        elif kind == "error":
            error = data.get("error") or {}
            raise ProviderError(
                short(str(error.get("message") or error.get("type") or "error event in stream")),
                retryable=error.get("type") in RETRYABLE_TYPES,
            )
        return []  # ping, and event types added to the API later

    def _tool_call(self, tool: dict[str, Any]) -> ToolCall:
        raw = "".join(tool["json"])
        try:
            value = json.loads(raw) if raw.strip() else tool["input"]  # no deltas: the start's input
        except ValueError:
            raise ProviderError(f"tool call {tool['name']} has invalid JSON input") from None
        if not isinstance(value, dict):
            raise ProviderError(f"tool call {tool['name']} input is not a JSON object")
        return ToolCall(id=tool["id"], name=tool["name"], input=value)

    def _usage(self) -> Usage:
        u = self.usage
        return Usage(
            input_tokens=u.get("input_tokens", 0),
            output_tokens=u.get("output_tokens", 0),
            cache_read_tokens=u.get("cache_read_input_tokens", 0),
            cache_write_tokens=u.get("cache_creation_input_tokens", 0),
        )


class AnthropicProvider(SSEProvider):
    name = "anthropic"

    def url(self) -> str:
        return (self.settings.base_url or DEFAULT_BASE_URL).rstrip("/") + "/v1/messages"

    def headers(self) -> dict[str, str]:
        headers = {
            "anthropic-version": str(self.settings.options.get("anthropic_version", API_VERSION)),
            "content-type": "application/json",
            "accept": "text/event-stream",
        }
        if self.settings.api_key:
            headers["x-api-key"] = self.settings.api_key
        return headers

    def body(self, request: LLMRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model(request),
            "max_tokens": request.max_tokens,
            "stream": True,
            "messages": to_messages(request.messages),
        }
        if request.system:
            body["system"] = request.system
        if request.tools:
            body["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": dict(t.input_schema)}
                for t in request.tools
            ]
        return body

    def decoder(self) -> AnthropicDecoder:
        return AnthropicDecoder()

