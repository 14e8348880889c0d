"""Calling a loaded WASM plugin: a fresh instance per call, and a failure named for what it is.

Per tool call or webhook, in a worker thread: a fresh instance from a
compiled module no other running call uses (:mod:`.engines`; module
globals never survive a call) runs the export under
``timeout_ms`` / ``memory_max_pages`` with the call's
:class:`~.callctx.CallContext` as Extism's ``host_context``; the output is
capped at ``max_output_bytes``. A failed call raises :class:`CallFailure`
whose ``kind`` says what happened:

==================  ==========================================================
``timeout``         the call ran past ``timeout_ms`` (an endless loop, an HTTP
                    request still going at the deadline)
``oom``             ``memory_max_pages`` reached
``stack_overflow``  the call stack was exhausted (runaway recursion)
``unreachable``     an ``unreachable`` instruction: the plugin's own panic or abort
``trap``            any other trap (out-of-bounds access, division by zero …),
                    with wasmtime's words
``error``           the plugin set an error and returned non-zero: its message
``host_denied``     a request to a host — or a redirect to one — not granted
``http``            an HTTP request failed (refused, DNS, TLS, too large)
``cancelled``       stopped by the gateway (the turn was cancelled, the gateway stops)
``too_large``       the output is larger than ``max_output_bytes``
``bad_output``      a tool's output is not ``{"content": string, "is_error": bool}``
==================  ==========================================================

:func:`run_tool` turns a failure into an error ``ToolResult`` (:func:`failure_text`).
Everything here blocks: never call it on the event loop.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Mapping

import extism

from exoclaw_hooks import ToolCall, ToolResult, make_person_key, split_session_key

from .settings import WasmPluginConfig

from .bridge import LoadedPlugin, free, one_line
from .callctx import CallContext, CallFailure
from .extlog import EXTISM_LOG

log = logging.getLogger("exoclaw.wasm")

MAX_ERROR_TEXT = 1000
#: Extism's own cap on an HTTP response; the plugin's memory is the other
MAX_HTTP_RESPONSE_BYTES = 50 * 1024 * 1024
_BACKTRACE = "wasm backtrace"
_TRAP = "wasm trap: "

__all__ = ["CallFailure", "call_export", "caller_of", "failure_text", "new_context", "parse_tool_output", "run_tool"]


def new_context(plugin: LoadedPlugin) -> CallContext:
    """The context of one call of ``plugin``: its store namespace, granted hosts and limits."""
    config = plugin.config
    return CallContext(
        plugin.name, store=plugin.store, namespace=plugin.grants.store_namespace,
        hosts=plugin.grants.allowed_hosts, timeout_ms=int(config.timeout_ms),
        max_response_bytes=min(MAX_HTTP_RESPONSE_BYTES, int(config.memory_max_pages) * 65536),
    )


def call_export(plugin: LoadedPlugin, export: str, payload: bytes, ctx: CallContext | None = None) -> bytes:
    """Run ``export`` in a fresh instance; the output bytes, or :class:`CallFailure` (blocking)."""
    config = plugin.config
    ctx = ctx if ctx is not None else new_context(plugin)
    if ctx.failure is not None:  # stopped while it waited for its turn
        raise ctx.failure
    with plugin.engines.engine() as compiled:
        instance = None
        try:
            instance = extism.Plugin(compiled, functions=plugin.functions)
            ctx.attach(instance.cancel_handle())
            ctx.begin()
            buf = instance.call(export, payload, parse=None, host_context=ctx)
            if ctx.failure is not None:  # a host function failed the call; the guest went on regardless
                raise ctx.failure
            size = len(buf)
            if size > config.max_output_bytes:
                raise CallFailure("too_large", size=size)
            return bytes(buf)
        except extism.Error as exc:
            raise classify(str(exc), ctx, instance) from None
        finally:
            if instance is not None:
                ctx.detach()  # nobody may cancel a freed instance
                free(instance)
            EXTISM_LOG.drain()


def classify(message: str, ctx: CallContext, instance: Any = None) -> CallFailure:
    """What a failed call's ``extism.Error`` means."""
    if ctx.failure is not None:
        return ctx.failure
    text = message.strip()
    if text == "timeout" and (time.monotonic() - ctx.started) * 1000 >= ctx.timeout_ms * 0.5:
        return CallFailure("timeout")
    if text in ("oom", "OutOfMemory"):
        return CallFailure("oom")
    if _BACKTRACE in text:
        cause = None
        if instance is not None:
            try:
                cause = EXTISM_LOG.cause_for(str(instance.id))
            except Exception:  # noqa: BLE001
                cause = None
        return trap_failure(cause)
    return CallFailure("error", text[:MAX_ERROR_TEXT])


def trap_failure(cause: str | None) -> CallFailure:
    """A trap, by the cause Extism logged for it (``None``: not known)."""
    if not cause:
        return CallFailure("trap")
    what = cause[len(_TRAP):] if cause.startswith(_TRAP) else cause
    low = what.lower()
    if "call stack exhausted" in low or "stack overflow" in low:
        return CallFailure("stack_overflow", what)
    if "unreachable" in low:
        return CallFailure("unreachable", what)
    if "out of memory" in low:
        return CallFailure("oom", what)
    return CallFailure("trap", what)


def failure_text(name: str, failure: CallFailure, config: WasmPluginConfig, what: str = "tool") -> str:
    """A short message for a failed call of tool (or channel) ``name``."""
    k, d = failure.kind, failure.detail
    subject = f"{what} {name}"
    if k == "timeout":
        return f"{subject} timed out after {config.timeout_ms}ms"
    if k == "oom":
        return f"{subject} ran out of memory (memory_max_pages {config.memory_max_pages})"
    if k == "stack_overflow":
        return f"{subject} crashed: stack overflow"
    if k == "unreachable":
        return f"{subject} crashed: unreachable instruction (the plugin panicked or aborted)"
    if k == "trap":
        return f"{subject} crashed (trap{': ' + d if d else ''})"
    if k == "host_denied":
        return f"{subject}: HTTP request denied: {d}"
    if k == "http":
        return f"{subject}: HTTP request failed: {d}"
    if k == "cancelled":
        return f"{subject} was stopped: {d or 'cancelled'}"
    if k == "too_large":
        return f"{subject} output too large ({failure.size} bytes > max_output_bytes {config.max_output_bytes})"
    if k == "bad_output":
        return f"{subject} returned invalid JSON{' (' + d + ')' if d else ''}"
    return f"{subject} failed: {d}"


def caller_of(route: Any) -> dict[str, str] | None:
    """Who calls a tool, as the plugin is told (``caller``); never a secret.

    ``agent``, ``channel``, ``account``, ``peer`` come from the route's
    session key (SPEC §4); ``person`` is the key memory files facts under
    (``agent:channel:account``, each part escaped), the one to keep a
    person's data apart by. A session key of another form (a router of its
    own) gives empty channel, account and peer and the session key as
    ``person``.
    """
    if route is None:
        return None
    agent = str(route.agent_id)
    parts = split_session_key(str(route.session_key))
    if parts is None:
        return {"agent": agent, "channel": "", "account": "", "peer": "", "person": str(route.session_key)}
    _, channel, account, peer = parts
    return {"agent": agent, "channel": channel, "account": account, "peer": peer,
            "person": make_person_key(agent, channel, account)}


def run_tool(
    plugin: LoadedPlugin, call: ToolCall, caller: Mapping[str, str] | None = None, ctx: CallContext | None = None
) -> ToolResult:
    """Call ``handle_tool_call`` for one tool call (blocking); never raises.

    ``caller`` (who asks: agent, channel, account, peer, person) goes to the
    plugin as the input's ``caller`` field.
    """
    request: dict[str, Any] = {"name": call.name, "input": dict(call.input)}
    if caller is not None:
        request["caller"] = dict(caller)
    try:
        payload = json.dumps(request, ensure_ascii=False).encode()
    except (TypeError, ValueError) as exc:
        return ToolResult(call.id, f"tool {call.name}: input is not JSON-serialisable ({exc})", True)
    try:
        out = call_export(plugin, "handle_tool_call", payload, ctx)
        content, is_error = parse_tool_output(out)
    except CallFailure as failure:
        return ToolResult(call.id, failure_text(call.name, failure, plugin.config), True)
    except Exception as exc:  # noqa: BLE001 - a sandbox problem is the tool's error, never the gateway's
        log.exception("event=wasm_call_failed plugin=%s tool=%s", plugin.name, call.name)
        return ToolResult(call.id, f"tool {call.name} failed: {one_line(exc, 200)}", True)
    return ToolResult(call.id, content, is_error)


def parse_tool_output(out: bytes) -> tuple[str, bool]:
    """``{"content": str, "is_error": bool}`` → its two fields; :class:`CallFailure` otherwise."""
    try:
        data = json.loads(out)
    except (ValueError, UnicodeDecodeError):
        raise CallFailure("bad_output") from None
    if not isinstance(data, dict) or not isinstance(data.get("content"), str):
        raise CallFailure("bad_output", 'expected {"content": string, "is_error": bool}')
    is_error = data.get("is_error", False)
    if not isinstance(is_error, bool):
        raise CallFailure("bad_output", "is_error must be true or false")
    return data["content"], is_error
