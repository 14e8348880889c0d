"""Running the tool calls of one model response (concurrently), through ``dispatch_tool``.

An unknown tool, a tool that raises, or a plugin that fails all become a
``tool_result`` with ``is_error: true`` that the model is shown; the turn
goes on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from exoclaw_hooks import AgentConfig, Route, ToolCall, ToolContext, ToolError, ToolResult

from .. import hookcall
from ..logs import quote
from .events import Sink, ToolCallEvent, ToolResultEvent

log = logging.getLogger("exoclaw.tools")


async def dispatch_one(rt: Any, call: ToolCall, context: ToolContext) -> ToolResult:
    t0 = time.perf_counter()
    outcome = "ok"
    try:
        result = await hookcall.call_first(rt.pm, "dispatch_tool", call=call, context=context)
        if result is None:
            outcome = "unknown"
            result = ToolResult(call.id, f"unknown tool: {call.name}", True)
        elif not isinstance(result, ToolResult):
            outcome = "error"
            result = ToolResult(call.id, f"tool {call.name} returned {type(result).__name__}, not a ToolResult", True)
        elif result.tool_use_id != call.id:
            result = ToolResult(call.id, result.content, result.is_error)
    except hookcall.HookError as exc:
        outcome = "error"
        err = exc.error
        text = str(err) if isinstance(err, ToolError) else f"tool {call.name} failed: {type(err).__name__}: {err}"
        result = ToolResult(call.id, text, True)
    if result.is_error and outcome == "ok":
        outcome = "error"
    duration = time.perf_counter() - t0
    rt.metrics.tool_calls.labels(call.name if outcome != "unknown" else "unknown", outcome).inc()
    rt.metrics.tool_seconds.labels(call.name if outcome != "unknown" else "unknown").observe(duration)
    log.info(
        "event=tool_call tool=%s outcome=%s ms=%.2f%s",
        quote(call.name), outcome, duration * 1000,
        f" error={quote(result.content[:200])}" if result.is_error else "",
    )
    return result


async def run_tools(
    rt: Any, agent: AgentConfig, route: Route, calls: list[ToolCall], sink: Sink, rid: str
) -> list[ToolResult]:
    context = ToolContext(agent, route, rid)
    for c in calls:
        await sink(ToolCallEvent(c))
    results = await asyncio.gather(*(dispatch_one(rt, c, context) for c in calls))
    for r in results:
        await sink(ToolResultEvent(r))
    return list(results)
