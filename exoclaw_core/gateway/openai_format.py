"""The OpenAI Chat Completions wire format (SPEC §4, "OpenAI-compatible face").

Parsing a request body into :class:`ChatRequest` (raising :class:`ApiError`
with OpenAI's error shape), and writing what the official clients expect:
``chat.completion`` objects, ``chat.completion.chunk`` SSE events, the
usage-only chunk and ``data: [DONE]``. No I/O here; ``openai_api.py`` serves it.

What Exoclaw takes from a request: the **last** ``user`` message is the new
turn (a string, or a list of ``{"type": "text", "text": ...}`` parts joined
with newlines; any other part type is refused); the text of every ``system``
and ``developer`` message, joined by blank lines, is added to the agent's
system prompt for this turn. Earlier ``user``/``assistant``/``tool``
messages are ignored: Exoclaw keeps the conversation itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..agent.events import ErrorEvent, ErrorKind
from . import text
from .protocol import json_type

#: OpenAI's roles; any other is a 400
ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
#: the longest ``user`` field / ``X-Exoclaw-Peer`` header accepted (they become part of a session key)
MAX_ID_CHARS = 256
DONE = b"data: [DONE]\n\n"


class ApiError(Exception):
    """An HTTP error in OpenAI's shape: ``{"error": {"message", "type", "code", "param"}}``."""

    def __init__(self, status: int, message: str, type: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None, headers: dict[str, str] | None = None):
        self.status, self.message, self.type, self.code, self.param = status, message, type, code, param
        self.headers = headers or {}
        super().__init__(message)

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "code": self.code, "param": self.param}}


def turn_error(event: ErrorEvent | None) -> ApiError:
    """The HTTP error for a turn's error (none: the turn was cut by shutdown)."""
    if event is None or event.kind is ErrorKind.CANCELLED:
        return ApiError(503, "the turn was cancelled (the gateway is shutting down)", "server_error", "cancelled")
    if event.kind is ErrorKind.BUDGET:
        # retrying cannot help before the budget's period rolls over
        return ApiError(429, event.message, "insufficient_quota", "insufficient_quota", headers={"x-should-retry": "false"})
    if event.kind in (ErrorKind.PROVIDER, ErrorKind.DEADLINE):
        return ApiError(502, event.message, "api_error", "provider_error")
    if event.kind is ErrorKind.STORE:  # another gateway (or this one, later) can take it: worth a retry
        return ApiError(503, event.message, "server_error", "store_unavailable")
    return ApiError(500, event.message, "server_error", "turn_failed")


def _bad_type(param: str, expected: str, value: Any) -> ApiError:
    got = json_type(value, integer="integer")
    return ApiError(400, f"Invalid type for '{param}': expected {expected}, but got {got} instead.",
                    code="invalid_type", param=param)


def _opt(body: dict[str, Any], name: str, kind: type | tuple[type, ...], expected: str) -> Any:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) and kind is int or not isinstance(value, kind):
        raise _bad_type(name, expected, value)
    return value


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    content: str
    system: str | None
    user: str
    stream: bool
    include_usage: bool
    #: the assistant message right before the new user message, as the client sent it (None: there was
    #: none): how a "regenerate" is told from the same question asked again (gateway/regenerate.py)
    previous_reply: str | None = None


def parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        body = None
    if not isinstance(body, dict):
        raise ApiError(400, "We could not parse the JSON body of your request: expected a JSON object.")
    bad = text.find_bad(body) if text.may_hold_escapes(raw) else None
    if bad is not None:  # a lone surrogate or NUL anywhere in the body: refused before anything runs
        where, why = bad
        raise ApiError(400, f"Invalid '{where}': {why}." if where else f"Invalid body: {why}.",
                       code="invalid_value", param=where or None)
    return body


def message_text(content: Any, param: str) -> str:
    """A message's text: a string, or the text parts of a list joined with newlines."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _bad_type(param, "a string or an array of content parts", content)
    texts = []
    for i, part in enumerate(content):
        where = f"{param}[{i}]"
        if not isinstance(part, dict):
            raise _bad_type(where, "an object", part)
        if part.get("type") != "text":
            raise ApiError(400, f"Invalid '{where}.type': only 'text' content parts are supported "
                           f"(got {part.get('type')!r}).", code="invalid_value", param=f"{where}.type")
        if not isinstance(part.get("text"), str):
            raise _bad_type(f"{where}.text", "a string", part.get("text"))
        texts.append(part["text"])
    return "\n".join(texts)


def _turn_text(value: str, param: str) -> str:
    """Text that becomes part of the turn: no NUL either (``parse_body`` already refused lone surrogates)."""
    why = text.problem(value, nul=True)
    if why is not None:
        raise ApiError(400, f"Invalid '{param}': {why}.", code="invalid_value", param=param)
    return value


def parse_chat_request(body: dict[str, Any]) -> ChatRequest:
    """Validate a ``/v1/chat/completions`` body; raise a 400 :class:`ApiError` naming the parameter."""
    model = body.get("model")
    if model is None or model == "":
        raise ApiError(400, "Missing required parameter: 'model'.", code="missing_required_parameter", param="model")
    if not isinstance(model, str):
        raise _bad_type("model", "a string", model)
    messages = body.get("messages")
    if messages is None:
        raise ApiError(400, "Missing required parameter: 'messages'.", code="missing_required_parameter",
                       param="messages")
    if not isinstance(messages, list):
        raise _bad_type("messages", "an array", messages)
    if not messages:
        raise ApiError(400, "Invalid 'messages': empty array. Expected an array with minimum length 1.",
                       code="empty_array", param="messages")
    systems: list[str] = []
    last_user: int | None = None
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise _bad_type(f"messages[{i}]", "an object", m)
        role = m.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise ApiError(400, f"Invalid value for 'messages[{i}].role': expected one of {', '.join(sorted(ROLES))}.",
                           code="invalid_value", param=f"messages[{i}].role")
        if role in ("system", "developer"):
            system = _turn_text(message_text(m.get("content"), f"messages[{i}].content"), f"messages[{i}].content")
            if system.strip():
                systems.append(system)
        elif role == "user":
            last_user = i
    if last_user is None:
        raise ApiError(400, "Invalid 'messages': there is no 'user' message (the last one is the new turn).",
                       code="invalid_value", param="messages")
    param = f"messages[{last_user}].content"
    content = _turn_text(message_text(messages[last_user].get("content"), param), param)
    if not content.strip():
        raise ApiError(400, f"Invalid '{param}': the new turn's text must not be empty.",
                       code="invalid_value", param=param)
    stream = _opt(body, "stream", bool, "a boolean")
    options = _opt(body, "stream_options", dict, "an object") or {}
    include_usage = options.get("include_usage")
    if include_usage is not None and not isinstance(include_usage, bool):
        raise _bad_type("stream_options.include_usage", "a boolean", include_usage)
    n = _opt(body, "n", int, "an integer")
    if n is not None and n != 1:
        raise ApiError(400, f"Invalid 'n': only n=1 is supported (got {n}).", code="unsupported_value", param="n")
    user = _turn_text(_opt(body, "user", str, "a string") or "api", "user")
    if len(user) > MAX_ID_CHARS:
        raise ApiError(400, f"Invalid 'user': at most {MAX_ID_CHARS} characters.", code="invalid_value", param="user")
    return ChatRequest(model, content, "\n\n".join(systems) or None, user, bool(stream), bool(include_usage),
                       _previous_reply(messages, last_user))


def _previous_reply(messages: list[Any], last_user: int) -> str | None:
    """The text of the assistant message before ``messages[last_user]`` (system messages skipped), else None."""
    for m in reversed(messages[:last_user]):
        if m.get("role") in ("system", "developer"):
            continue
        if m.get("role") != "assistant":
            return None
        content = m.get("content")
        try:
            return message_text(content, "") if content is not None else ""
        except ApiError:
            return None
    return None


def usage_object(data: dict[str, Any] | None) -> dict[str, Any]:
    """OpenAI's usage from the turn's ``usage`` event (sums over its LLM calls).

    An ``exoclaw`` member adds what OpenAI's shape has no place for: the
    cost, and the context's composition in tokens by section (SPEC §9).
    """
    data = data or {}
    prompt, completion = int(data.get("input_tokens", 0)), int(data.get("output_tokens", 0))
    usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    extra = {k: data[k] for k in ("cost_usd", "unpriced", "context") if k in data}
    if extra:
        usage["exoclaw"] = extra
    return usage


def completion(cid: str, created: int, model: str, text: str, usage: dict[str, Any] | None) -> dict[str, Any]:
    """The non-streaming answer: one ``chat.completion`` object."""
    return {
        "id": cid, "object": "chat.completion", "created": created, "model": model, "system_fingerprint": None,
        "choices": [{
            "index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
            "logprobs": None, "finish_reason": "stop",
        }],
        "usage": usage_object(usage),
    }


class Chunks:
    """The SSE events of one streamed completion, as bytes ready to write.

    The constant parts of a chunk are serialised once per request; a content
    chunk costs one ``json.dumps`` of its text.
    """

    __slots__ = ("_head", "_tail")

    def __init__(self, cid: str, created: int, model: str, include_usage: bool):
        self._head = (
            f'data: {{"id":{json.dumps(cid)},"object":"chat.completion.chunk","created":{created},'
            f'"model":{json.dumps(model, ensure_ascii=False)},"system_fingerprint":null,"choices":['
        )
        # with include_usage every chunk but the last carries "usage": null (as OpenAI's do)
        self._tail = ',"usage":null}\n\n' if include_usage else "}\n\n"

    def _choice(self, delta: str, finish: str = "null") -> bytes:
        return (f'{self._head}{{"index":0,"delta":{delta},"logprobs":null,"finish_reason":{finish}}}]'
                f"{self._tail}").encode()

    def role(self) -> bytes:
        return self._choice('{"role":"assistant","content":""}')

    def text(self, text: str) -> bytes:
        return self._choice('{"content":' + json.dumps(text, ensure_ascii=False) + "}")

    def stop(self) -> bytes:
        return self._choice("{}", '"stop"')

    def usage(self, data: dict[str, Any] | None) -> bytes:
        return f'{self._head}],"usage":{json.dumps(usage_object(data))}}}\n\n'.encode()

    @staticmethod
    def error(err: ApiError) -> bytes:
        """An error after output started: the official clients raise ``APIError`` on it."""
        return b"data: " + json.dumps(err.body(), ensure_ascii=False).encode() + b"\n\n"
