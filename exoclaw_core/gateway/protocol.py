"""The WebSocket wire format of SPEC §4: framing, validation, the exact error texts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from exoclaw_hooks import IncomingMessage, InvalidParams

from ..agent.events import (
    BudgetWarningEvent,
    DoneEvent,
    ErrorEvent,
    TextEvent,
    ToolCallEvent,
    ToolResultEvent,
    TurnEvent,
    UsageEvent,
)
from . import text

#: an unknown method's name is echoed in the error up to this many characters
MAX_ECHOED_NAME = 200


class FrameError(Exception):
    """A frame that cannot be handled; ``id`` is what the answer carries ("0" if unknown)."""

    def __init__(self, text: str, id: str = "0"):
        self.text, self.id = text, id
        super().__init__(text)


@dataclass(frozen=True, slots=True)
class Request:
    id: str
    method: str
    params: dict[str, Any]


def parse_request(raw: str) -> Request:
    """Parse one text frame into a request, or raise :class:`FrameError` with the SPEC's text."""
    try:
        obj = json.loads(raw)
    except (json.JSONDecodeError, RecursionError) as exc:
        detail = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
        raise FrameError(f"parse error: {detail}") from None
    if not isinstance(obj, dict):
        raise FrameError(f"parse error: expected a JSON object, got {json_type(obj)}")
    rid = obj.get("id")
    if not isinstance(rid, str):
        raise FrameError("id must be a string")
    method = obj.get("method")
    if not isinstance(method, str):
        raise FrameError(unknown_method(json.dumps(method)), rid)
    params = obj.get("params")
    if params is None:
        params = {}
    elif not isinstance(params, dict):
        raise FrameError(str(InvalidParams("params", f"must be an object, got {json_type(params)}")), rid)
    if text.may_hold_escapes(raw):
        _check_text(rid, method, params)
    return Request(rid, method, params)


def _check_text(rid: str, method: str, params: dict[str, Any]) -> None:
    """Refuse a frame whose id, method or params hold a string that is not proper Unicode (issue 16)."""
    why = text.problem(rid)
    if why is not None:
        raise FrameError(f"parse error: id {why}")
    why = text.problem(method)
    if why is not None:
        raise FrameError(f"parse error: method {why}", rid)
    bad = text.find_bad(params)
    if bad is not None:
        raise FrameError(str(InvalidParams(bad[0] or "params", bad[1])), rid)


def unknown_method(name: str) -> str:
    """The SPEC's ``unknown method: <name>``, a huge name cut (it is the client's own text)."""
    if len(name) > MAX_ECHOED_NAME:
        name = name[:MAX_ECHOED_NAME] + "…"
    return f"unknown method: {name}"


def json_type(value: Any, integer: str = "number") -> str:
    """A JSON value's type in words, for an error that says what came instead."""
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return {dict: "object", list: "array", str: "string", int: integer, float: "number"}.get(type(value), "value")


def result_frame(rid: str, result: Any) -> str:
    return json.dumps({"id": rid, "result": result, "error": None})


def error_frame(rid: str, error: str) -> str:
    return json.dumps({"id": rid, "result": None, "error": error})


_dumps = json.JSONEncoder().encode


def event_frame(rid: str, event: str, data: Any) -> str:
    """One stream frame; built from pieces because it is the hottest path (a frame per chunk)."""
    if data is None and event == "done":
        return '{"id": %s, "event": "done"}' % _dumps(rid)
    return '{"id": %s, "event": "%s", "data": %s}' % (_dumps(rid), event, _dumps(data))


_FRAMES: dict[type, Any] = {
    TextEvent: lambda rid, e: event_frame(rid, "text", e.text),
    ToolCallEvent: lambda rid, e: event_frame(
        rid, "tool_use", {"id": e.call.id, "name": e.call.name, "input": dict(e.call.input)}),
    ToolResultEvent: lambda rid, e: event_frame(
        rid, "tool_result",
        {"tool_use_id": e.result.tool_use_id, "content": e.result.content, "is_error": e.result.is_error}),
    UsageEvent: lambda rid, e: event_frame(rid, "usage", e.as_json()),
    BudgetWarningEvent: lambda rid, e: event_frame(rid, "budget.warning", dict(e.data)),
    ErrorEvent: lambda rid, e: event_frame(rid, "error", e.message),
    DoneEvent: lambda rid, e: event_frame(rid, "done", None),
}


def turn_frame(rid: str, event: TurnEvent) -> str:
    """A turn's event as the stream frame of SPEC §4."""
    return _FRAMES[type(event)](rid, event)


def _opt_str(params: dict[str, Any], name: str, default: str | None) -> str | None:
    value = params.get(name, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise InvalidParams(name, f"must be a string (got {json_type(value)})")
    return value


def parse_chat_send(params: dict[str, Any]) -> IncomingMessage:
    """Validate ``chat.send`` params (SPEC §4) into an :class:`IncomingMessage`."""
    fields = {}
    for name in ("channel", "account", "content"):
        if name not in params or params[name] is None:
            raise InvalidParams(name, "required")
        value = params[name]
        if not isinstance(value, str):
            raise InvalidParams(name, f"must be a string (got {json_type(value)})")
        if not value.strip():
            raise InvalidParams(name, "must not be empty")
        fields[name] = value
    message = IncomingMessage(
        channel=fields["channel"],
        account=fields["account"],
        content=fields["content"],
        peer=_opt_str(params, "peer", "main") or "main",
        guild=_opt_str(params, "guild", None),
        team=_opt_str(params, "team", None),
    )
    for name in ("channel", "account", "peer", "guild", "team", "content"):  # it becomes a turn: no NUL
        value = getattr(message, name)
        why = text.problem(value, nul=True) if value is not None else None
        if why is not None:
            raise InvalidParams(name, why)
    return message


def opt_int(params: dict[str, Any], name: str, *, minimum: int = 1, maximum: int = 10_000) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParams(name, f"must be an integer (got {json_type(value)})")
    if not minimum <= value <= maximum:
        raise InvalidParams(name, f"must be between {minimum} and {maximum} (got {value})")
    return value
