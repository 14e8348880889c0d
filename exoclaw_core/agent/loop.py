"""One turn: context → LLM ⇄ tools → commit → ``done`` → learn.

Every step is a hook call through :mod:`exoclaw_core.hookcall`; nothing here
knows which plugin answers. A turn that fails stores nothing (no half-written
turn); a turn whose client went away still runs to completion and is stored
(its tokens are paid for).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any, Awaitable, Callable

from exoclaw_hooks import (
    AgentConfig,
    BudgetExceeded,
    CompletedTurn,
    ContextPart,
    ContextRequest,
    IncomingMessage,
    LLMCall,
    LLMCallResult,
    LLMRequest,
    Message,
    ProviderError,
    Route,
    TextDelta,
    ToolSpec,
    ToolUseEvent,
    Usage,
    make_person_key,
)

from .. import hookcall
from ..logs import quote, redact, request_id
from .context import build_context
from .llm import CallTarget, stream_with_fallback
from .tools import run_tools

log = logging.getLogger("exoclaw.agent")

Emit = Callable[[str, Any], Awaitable[None]]


@dataclass
class TurnOutcome:
    ok: bool
    reply: str = ""
    error: str | None = None
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    priced: bool = True
    context_tokens: int = 0
    #: the gateway was stopping: the turn did not run (or was cut) and stored nothing
    cancelled: bool = False


class TurnFailed(Exception):
    def __init__(self, text: str, kind: str):
        self.text, self.kind = text, kind
        super().__init__(text)


def _flatten(results: list[Any]) -> list[Any]:
    out: list[Any] = []
    for r in results:
        if isinstance(r, (list, tuple)):
            out.extend(r)
        else:
            out.append(r)
    return out


async def run_turn(rt: Any, message: IncomingMessage, route: Route, emit: Emit) -> TurnOutcome:
    """Run one turn in the session's lane; emits stream events and ends with exactly one ``done``."""
    agent: AgentConfig = rt.settings.agents[route.agent_id]
    emit = _once_done(emit)
    if rt.stopping:  # accepted while shutting down: answer, but do not start
        await _end_cancelled(emit)
        return TurnOutcome(ok=False, error=SHUTTING_DOWN, cancelled=True)
    rid = uuid.uuid4().hex[:12]
    token = request_id.set(rid)
    rt.metrics.turns_in_flight.inc()
    try:
        async with rt.lanes.hold(route.session_key):
            outcome = await _turn(rt, agent, message, route, emit, rid)
        rt.metrics.turns.labels(agent.id, "ok" if outcome.ok else "error").inc()
        return outcome
    except asyncio.CancelledError:
        rt.metrics.turns.labels(agent.id, "cancelled").inc()
        log.info("event=turn_cancelled session=%s", quote(route.session_key))
        # the stream still ends with exactly one done (a no-op if it was already sent:
        # cancelled while the memory layers learned, after the commit)
        await asyncio.shield(_end_cancelled(emit))
        raise
    except Exception as exc:  # noqa: BLE001 - a bug must still end the stream with one done
        rt.metrics.turns.labels(agent.id, "error").inc()
        rt.metrics.errors.labels("internal").inc()
        log.exception("event=turn_crashed error=%s", quote(f"{type(exc).__name__}: {exc}"))
        await emit("error", "internal error: the turn was not completed")
        await emit("done", None)
        return TurnOutcome(ok=False, error="internal error")
    finally:
        rt.metrics.turns_in_flight.dec()
        request_id.reset(token)


SHUTTING_DOWN = "turn cancelled: the gateway is shutting down"


def _once_done(emit: Emit) -> Emit:
    """Nothing is emitted after ``done``: whatever fails after it (learning, a late
    cancellation) cannot give a stream a second ``done`` or an error after it."""
    ended = False

    async def guarded(event: str, data: Any) -> None:
        nonlocal ended
        if ended:
            return
        if event == "done":
            ended = True
        await emit(event, data)

    return guarded


async def _end_cancelled(emit: Emit) -> None:
    await emit("error", SHUTTING_DOWN)
    await emit("done", None)


async def _turn(rt: Any, agent: AgentConfig, message: IncomingMessage, route: Route, emit: Emit, rid: str) -> TurnOutcome:
    started = time.perf_counter()
    person_key = make_person_key(agent.id, message.channel, message.account)
    log.info("event=turn_start agent=%s session=%s chars=%d", agent.id, quote(route.session_key), len(message.content))
    outcome = TurnOutcome(ok=False)
    try:
        parts: list[ContextPart] = _flatten(
            await hookcall.call_all(
                rt.pm, "assemble_context", concurrent=True,
                request=ContextRequest(agent, route, message, person_key, rt.settings.memory, rt.store),
            )
        )
        ctx = build_context(agent, message, parts, rt.settings.memory.context_tokens)
        outcome.context_tokens = ctx.tokens
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "event=context tokens=%d facts=%d turns=%d dropped_facts=%d dropped_turns=%d",
                ctx.tokens, ctx.facts, ctx.turns, ctx.dropped_facts, ctx.dropped_turns,
            )
        tools: tuple[ToolSpec, ...] = tuple(_flatten(await hookcall.call_all(rt.pm, "list_tools", agent=agent)))
        new_messages = await _llm_tool_loop(rt, agent, route, ctx, tools, emit, outcome, rid)
        # the turn is committed before ``done``: done means "stored"
        stored = (Message(role="user", content=message.content),) + tuple(new_messages)
        turn = await rt.store.append_turn(route.session_key, agent.id, stored, outcome.usage.total)
        outcome.ok = True
    except TurnFailed as exc:
        # a provider's or plugin's own text may quote a credential: never stream one
        exc.text = redact(exc.text)
        outcome.error = exc.text
        rt.metrics.errors.labels(exc.kind).inc()
        log.warning("event=turn_failed kind=%s error=%s", exc.kind, quote(exc.text))
        await emit("error", exc.text)
        await emit("done", None)
        return outcome
    usage_data: dict[str, Any] = {
        "input_tokens": outcome.usage.input_tokens,
        "output_tokens": outcome.usage.output_tokens,
        "cost_usd": outcome.cost_usd,
    }
    if not outcome.priced:
        usage_data["unpriced"] = True
    await emit("usage", usage_data)
    await emit("done", None)
    log.info(
        "event=turn_done agent=%s session=%s input_tokens=%d output_tokens=%d cost_usd=%.6f context_tokens=%d ms=%.1f",
        agent.id, quote(route.session_key), outcome.usage.input_tokens, outcome.usage.output_tokens,
        outcome.cost_usd, outcome.context_tokens, (time.perf_counter() - started) * 1000,
    )
    await hookcall.call_all(
        rt.pm, "after_turn",
        turn=CompletedTurn(
            agent, route, message, person_key, turn, outcome.reply, outcome.usage, rt.settings.memory, rt.store
        ),
    )
    return outcome


async def _llm_tool_loop(
    rt: Any, agent: AgentConfig, route: Route, ctx: Any, tools: tuple[ToolSpec, ...],
    emit: Emit, outcome: TurnOutcome, rid: str,
) -> list[Message]:
    """Call the model, run the tools it asks for, feed the results back; return the new messages."""
    new: list[Message] = []
    for iteration in range(agent.max_tool_iterations + 1):
        request = LLMRequest(
            model=agent.model, system=ctx.system, messages=ctx.messages + tuple(new),
            tools=tools, max_tokens=agent.max_tokens,
        )
        call = LLMCall(request, agent, route, agent.provider, agent.model, iteration, uuid.uuid4().hex, rid)
        call = await _before_call(rt, call)
        text, calls = await _one_call(rt, agent, call, emit, outcome)
        outcome.reply += text
        if not calls:
            new.append(Message(role="assistant", content=text))
            return new
        if iteration == agent.max_tool_iterations:
            raise TurnFailed(
                f"tool loop stopped: the model still asked for tools after {agent.max_tool_iterations} iterations "
                "(max_tool_iterations)", "tool_loop",
            )
        new.append(Message(role="assistant", content=text, tool_calls=tuple(calls)))
        results = await run_tools(rt, agent, route, calls, emit, rid)
        new.append(Message(role="tool", tool_results=tuple(results)))
    raise AssertionError("unreachable")


async def _before_call(rt: Any, call: LLMCall) -> LLMCall:
    """Each ``before_llm_call`` sees the request as the previous one left it (a pipeline)."""

    def adopt(current: LLMCall, result: Any) -> LLMCall:
        return replace(current, request=result) if isinstance(result, LLMRequest) else current

    try:
        return await hookcall.call_pipeline(rt.pm, "before_llm_call", "call", call, adopt)
    except BudgetExceeded as exc:
        rt.metrics.budget_refusals.labels(exc.scope).inc()
        raise TurnFailed(str(exc), "budget") from exc
    except Exception as exc:  # noqa: BLE001
        raise TurnFailed(f"call refused: {type(exc).__name__}: {exc}", "refused") from exc


async def _one_call(
    rt: Any, agent: AgentConfig, call: LLMCall, emit: Emit, outcome: TurnOutcome,
) -> tuple[str, list[Any]]:
    target = CallTarget(agent.provider, agent.model)
    chunks: list[str] = []
    calls: list[Any] = []
    usage = Usage()
    stop_reason = None
    t0 = time.perf_counter()
    ttft: float | None = None
    error: str | None = None
    try:
        async for event in stream_with_fallback(agent, call.request, rt.provider_for, target, rt.retry_policy):
            if isinstance(event, TextDelta):
                if ttft is None:
                    ttft = time.perf_counter() - t0
                chunks.append(event.text)
                await emit("text", event.text)
            elif isinstance(event, ToolUseEvent):
                if ttft is None:
                    ttft = time.perf_counter() - t0
                calls.append(event.call)
            else:
                usage, stop_reason = event.usage, event.stop_reason
    except ProviderError as exc:
        error = str(exc)
    except asyncio.CancelledError:
        # observers (metering's reservation) must still hear that the call ended
        result = LLMCallResult(usage, time.perf_counter() - t0, ttft, "cancelled", stop_reason)
        await hookcall.call_all(rt.pm, "after_llm_call", call=call, result=result)
        raise
    duration = time.perf_counter() - t0
    labels = (target.provider, target.model)
    rt.metrics.llm_seconds.labels(*labels).observe(duration)
    if ttft is not None:
        rt.metrics.llm_ttft.labels(*labels).observe(ttft)
    rt.metrics.tokens.labels("input").inc(usage.input_tokens)
    rt.metrics.tokens.labels("output").inc(usage.output_tokens)
    if target.provider != call.provider or target.model != call.model:
        call = LLMCall(call.request, call.agent, call.route, target.provider, target.model,
                       call.iteration, call.call_id, call.request_id)
    result = LLMCallResult(usage, duration, ttft, error, stop_reason)
    log.info(
        "event=llm_call provider=%s model=%s iteration=%d input_tokens=%d output_tokens=%d ms=%.1f%s",
        target.provider, target.model, call.iteration, usage.input_tokens, usage.output_tokens,
        duration * 1000, f" error={quote(error)}" if error else "",
    )
    costs = await hookcall.call_all(rt.pm, "after_llm_call", call=call, result=result)
    outcome.usage = outcome.usage + usage
    priced = bool(costs) and all(c.get("priced", True) for c in costs if isinstance(c, dict))
    cost = sum(float(c.get("cost_usd", 0.0)) for c in costs if isinstance(c, dict))
    outcome.cost_usd += cost
    outcome.priced = outcome.priced and priced
    rt.metrics.cost.inc(cost)
    if error:
        raise TurnFailed(error, "provider")
    return "".join(chunks), calls
