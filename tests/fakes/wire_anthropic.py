"""The Anthropic Messages API wire format, as the fake LLM server writes it.

Shapes follow the API reference ("Streaming Messages") and what the official
``anthropic`` client parses (``anthropic/lib/streaming/_messages.py``):
``message_start`` → per block ``content_block_start`` / ``content_block_delta``
(``text_delta``, ``input_json_delta`` starting with an empty piece) /
``content_block_stop`` → ``message_delta`` (stop reason, cumulative usage) →
``message_stop``, with ``ping``s in between.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from .llm_script import Fail, InStreamError, Reply

ERROR_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
    403: "permission_error", 404: "not_found_error", 413: "request_too_large",
    429: "rate_limit_error", 500: "api_error", 504: "timeout_error", 529: "overloaded_error",
}


def _id(prefix: str) -> str:
    return f"{prefix}_01{uuid.uuid4().hex[:22]}"


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        texts = [b.get("text", "") for b in content or [] if b.get("type") == "text"]
        results = [str(b.get("content", "")) for b in content or [] if b.get("type") == "tool_result"]
        return " ".join(texts or results)
    return ""


def usage_of(reply: Reply, body: dict[str, Any]) -> tuple[int, int]:
    if reply.usage is not None:
        return reply.usage
    size = len(json.dumps(body.get("messages", []))) + len(str(body.get("system", "")))
    return max(1, size // 4), max(1, len(reply.text) // 4 + 12 * len(reply.calls))


def stop_reason(reply: Reply) -> str:
    return reply.stop_reason or ("tool_use" if reply.calls else "end_turn")


def message_start(reply: Reply, body: dict[str, Any]) -> bytes:
    in_tokens, _ = usage_of(reply, body)
    message = {
        "id": _id("msg"), "type": "message", "role": "assistant",
        "model": reply.model or body.get("model", "claude-fake"), "content": [],
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": in_tokens, "cache_creation_input_tokens": reply.cache_write,
                  "cache_read_input_tokens": reply.cache_read, "output_tokens": 1},
    }
    return sse("message_start", {"type": "message_start", "message": message})


def text_events(chunks: list[str] | tuple[str, ...], index: int, pings: bool) -> list[bytes]:
    events = [sse("content_block_start", {"type": "content_block_start", "index": index,
                                          "content_block": {"type": "text", "text": ""}})]
    if pings:
        events.append(sse("ping", {"type": "ping"}))
    for chunk in chunks:
        events.append(sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                                  "delta": {"type": "text_delta", "text": chunk}}))
    return events


def stream_events(reply: Reply, body: dict[str, Any]) -> list[bytes]:
    """Every SSE event of ``reply``, in order, each ready to write."""
    events = [message_start(reply, body)]
    index = 0
    if reply.text_chunks:
        events += text_events(reply.text_chunks, index, reply.pings)
        events.append(sse("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1
    for call in reply.calls:
        block = {"type": "tool_use", "id": call.id or _id("toolu"), "name": call.name, "input": {}}
        events.append(sse("content_block_start", {"type": "content_block_start", "index": index,
                                                  "content_block": block}))
        for piece in ["", *call.argument_pieces(json.dumps(dict(call.input)))]:
            events.append(sse("content_block_delta", {
                "type": "content_block_delta", "index": index,
                "delta": {"type": "input_json_delta", "partial_json": piece}}))
        events.append(sse("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1
    in_tokens, out_tokens = usage_of(reply, body)
    usage: dict[str, Any] = {"output_tokens": out_tokens}
    if reply.full_delta_usage:
        usage.update(input_tokens=in_tokens, cache_creation_input_tokens=reply.cache_write,
                     cache_read_input_tokens=reply.cache_read)
    events.append(sse("message_delta", {"type": "message_delta", "usage": usage,
                                        "delta": {"stop_reason": stop_reason(reply), "stop_sequence": None}}))
    events.append(sse("message_stop", {"type": "message_stop"}))
    return events


def in_stream_error(err: InStreamError, body: dict[str, Any]) -> list[bytes]:
    """A 200 stream that starts, then carries an ``error`` event (the API's overloaded case)."""
    events = [message_start(Reply(text_chunks=err.text_chunks), body)]
    if err.text_chunks:
        events += text_events(err.text_chunks, 0, pings=False)
    error = {"type": err.error_type or "overloaded_error", "message": err.message}
    events.append(sse("error", {"type": "error", "error": error}))
    return events


def error_body(fail: Fail) -> dict[str, Any]:
    error_type = fail.error_type or ERROR_TYPES.get(fail.status, "api_error")
    return {"type": "error", "error": {"type": error_type, "message": fail.message},
            "request_id": _id("req")}


def full_message(reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
    """The non-streamed answer (``stream`` absent or false)."""
    content: list[dict[str, Any]] = [{"type": "text", "text": reply.text}] if reply.text else []
    content += [{"type": "tool_use", "id": c.id or _id("toolu"), "name": c.name, "input": dict(c.input)}
                for c in reply.calls]
    in_tokens, out_tokens = usage_of(reply, body)
    return {
        "id": _id("msg"), "type": "message", "role": "assistant",
        "model": reply.model or body.get("model", "claude-fake"), "content": content,
        "stop_reason": stop_reason(reply), "stop_sequence": None,
        "usage": {"input_tokens": in_tokens, "output_tokens": out_tokens,
                  "cache_creation_input_tokens": reply.cache_write, "cache_read_input_tokens": reply.cache_read},
    }


def auth_ok(headers: Any, api_key: str) -> bool:
    """``x-api-key``, or a bearer token (what newer official clients send)."""
    return api_key in (headers.get("x-api-key"), (headers.get("authorization") or "").removeprefix("Bearer "))


AUTH_FAIL = Fail(401, "invalid x-api-key")
