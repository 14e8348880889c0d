"""The OpenAI Chat Completions wire format, as the fake LLM server writes it.

Shapes follow the API reference ("The chat completion chunk object") and what
the official ``openai`` client parses (``openai/lib/streaming/chat``): a
first chunk with ``delta.role``, ``delta.content`` pieces, tool calls whose
first fragment carries ``index``, ``id``, ``type`` and ``function.name``
with ``arguments: ""`` and later fragments only argument pieces, a chunk with
``finish_reason``, then — when ``stream_options.include_usage`` — a chunk with
``choices: []`` and the usage (every earlier chunk has ``usage: null``), and
``data: [DONE]``.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from .llm_script import Fail, InStreamError, Reply
from .wire_anthropic import usage_of

DONE = b"data: [DONE]\n\n"
ERRORS = {  # status -> (type, code), as api.openai.com answers
    400: ("invalid_request_error", None), 401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"), 429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None), 503: ("server_error", None),
}


def sse(data: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(data)}\n\n".encode()


def last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") in ("user", "tool"):
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            return str(content or "")
    return ""


def stop_reason(reply: Reply) -> str:
    return reply.stop_reason or ("tool_calls" if reply.calls else "stop")


class _Chunks:
    def __init__(self, reply: Reply, body: dict[str, Any]):
        self.id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.model = reply.model or body.get("model", "gpt-fake")
        self.with_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        data: dict[str, Any] = {
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model, "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self.with_usage:
            data["usage"] = None
        return sse(data)

    def usage(self, reply: Reply, body: dict[str, Any]) -> bytes:
        return sse({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                    "model": self.model, "system_fingerprint": "fp_fake", "choices": [],
                    "usage": usage_dict(reply, body)})


def usage_dict(reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
    prompt, completion = usage_of(reply, body)
    prompt += reply.cache_read  # OpenAI's prompt_tokens include the cached ones
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": reply.cache_read, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}


def stream_events(reply: Reply, body: dict[str, Any]) -> list[bytes]:
    """Every SSE event of ``reply``, in order, ``[DONE]`` last."""
    c = _Chunks(reply, body)
    events: list[bytes] = []
    if reply.text_chunks or not reply.calls:
        events.append(c.chunk({"role": "assistant", "content": "", "refusal": None}))
        events += [c.chunk({"content": piece}) for piece in reply.text_chunks]
    for index, call in enumerate(reply.calls):
        first = {"index": index, "id": call.id or f"call_{uuid.uuid4().hex[:24]}", "type": "function",
                 "function": {"name": call.name, "arguments": ""}}
        delta: dict[str, Any] = {"tool_calls": [first]}
        if not events:
            delta = {"role": "assistant", "content": None, **delta, "refusal": None}
        events.append(c.chunk(delta))
        for piece in call.argument_pieces(json.dumps(dict(call.input))):
            events.append(c.chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
    events.append(c.chunk({}, stop_reason(reply)))
    if c.with_usage:
        events.append(c.usage(reply, body))
    events.append(DONE)
    return events


def in_stream_error(err: InStreamError, body: dict[str, Any]) -> list[bytes]:
    c = _Chunks(Reply(), body)
    events = [c.chunk({"role": "assistant", "content": "", "refusal": None})]
    events += [c.chunk({"content": piece}) for piece in err.text_chunks]
    error = {"message": err.message, "type": err.error_type or "server_error", "param": None, "code": None}
    events.append(sse({"error": error}))
    return events


def error_body(fail: Fail) -> dict[str, Any]:
    error_type, code = ERRORS.get(fail.status, ("server_error" if fail.status >= 500 else "invalid_request_error", None))
    return {"error": {"message": fail.message, "type": fail.error_type or error_type, "param": None,
                      "code": fail.code if fail.code is not None else code}}


def full_message(reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
    """The non-streamed ``chat.completion``."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None, "refusal": None}
    if reply.calls:
        message["tool_calls"] = [
            {"id": c.id or f"call_{uuid.uuid4().hex[:24]}", "type": "function",
             "function": {"name": c.name, "arguments": json.dumps(dict(c.input))}}
            for c in reply.calls]
    return {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": int(time.time()),
            "model": reply.model or body.get("model", "gpt-fake"), "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": stop_reason(reply)}],
            "usage": usage_dict(reply, body)}


def auth_ok(headers: Any, api_key: str) -> bool:
    return headers.get("authorization") == f"Bearer {api_key}"


def auth_fail(headers: Any) -> Fail:
    """401 as api.openai.com words it (the key masked to its last four characters)."""
    given = (headers.get("authorization") or "").removeprefix("Bearer ")
    masked = f"{given[:3]}{'*' * max(len(given) - 7, 0)}{given[-4:]}" if len(given) > 8 else "***"
    return Fail(401, f"Incorrect API key provided: {masked}. You can find your API key at "
                     "https://platform.openai.com/account/api-keys.")
