"""Running the tool calls of one model response (concurrently), through ``dispatch_tool``.

An unknown tool, a tool that raises, or a plugin that fails all become a
``tool_result`` with ``is_error: true`` that the model is shown; the turn
goes on.

Every tool's result — WASM, MCP or a Python plugin's — is capped at the
agent's ``max_tool_result_tokens`` (estimated as everywhere: ``estimate_tokens``)
before it is streamed, stored and sent in the next LLM call: the head is
kept and the cut is marked, so the model knows it saw only part.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from exoclaw_hooks import AgentConfig, Route, ToolCall, ToolContext, ToolError, ToolResult, estimate_tokens

from .. import hookcall
from ..logs import quote
from .events import Sink, ToolCallEvent, ToolResultEvent

log = logging.getLogger("exoclaw.tools")


def cap_result(result: ToolResult, max_tokens: int) -> ToolResult:
    """``result`` with its content cut to ``max_tokens`` (estimated), the cut marked; unchanged if it fits."""
    tokens = estimate_tokens(result.content)
    if tokens <= max_tokens:
        return result
    mark = (f"\n[… cut by the gateway: the tool returned about {tokens} tokens "
            f"({len(result.content)} characters); only the first part is shown (max_tool_result_tokens = {max_tokens})]")
    budget = max(0, max_tokens - estimate_tokens(mark))
    # the head that fits: a character per token first (never too much), widened while it still fits
    keep = budget
    while keep < len(result.content) and estimate_tokens(result.content[:keep * 2]) <= budget:
        keep *= 2
    return ToolResult(result.tool_use_id, result.content[:keep] + mark, result.is_error)


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
    limit = context.agent.max_tool_result_tokens
    capped = cap_result(result, limit)
    if capped is not result:
        log.info("event=tool_result_cut tool=%s chars=%d max_tokens=%d", quote(call.name), len(result.content), limit)
        result = capped
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
