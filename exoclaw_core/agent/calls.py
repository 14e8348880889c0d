"""One LLM call, metered: ``before_llm_call`` → provider stream → ``after_llm_call``.

The agent's calls (each round of a turn's tool loop) and the calls plugins
make through ``host.llm`` (memory extraction …) go through the same steps,
so budgets refuse and metering records them alike; ``LLMCall.kind`` tells
them apart.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any, Awaitable, Callable

from exoclaw_hooks import (
    AgentConfig,
    BudgetExceeded,
    LLMCall,
    LLMCallResult,
    LLMReply,
    LLMRequest,
    ProviderError,
    ProviderSettings,
    Route,
    StreamEnd,
    TextDelta,
    ToolCall,
    ToolUseEvent,
    Usage,
    count_chars,
)

from .. import hookcall
from ..logs import quote
from .llm import CallTarget, candidates_of, stream_with_fallback

log = logging.getLogger("exoclaw.llm")


class CallRefused(Exception):
    """A ``before_llm_call`` plugin refused the call for another reason than a budget."""


@dataclass
class CallOutcome:
    text: str = ""
    calls: list[ToolCall] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    stop_reason: str | None = None
    cost_usd: float = 0.0
    priced: bool = True
    #: the provider failed: ``provider error: ...``
    error: str | None = None
    #: the upstream streamed past the call's max_tokens and was cut (``error`` says so)
    cut: bool = False
    #: scopes that passed their warning share with this call (``after_llm_call``'s ``budget_warnings``)
    budget_warnings: list[dict[str, Any]] = field(default_factory=list)


def new_call(
    request: LLMRequest, agent: AgentConfig, route: Route, *, iteration: int = 0, request_id: str = "",
    kind: str = "turn", person_key: str = "", provider: str | None = None, model: str | None = None,
) -> LLMCall:
    return LLMCall(
        request, agent.public(), route, provider or agent.provider, model or request.model, iteration,
        uuid.uuid4().hex, request_id, kind, person_key,
    )


async def admit(rt: Any, call: LLMCall) -> LLMCall:
    """Run the ``before_llm_call`` pipeline: each plugin sees the request as the previous one left it.

    :raises BudgetExceeded: a budget refused the call (counted in the metrics).
    :raises CallRefused: another plugin refused it.
    """

    def adopt(current: LLMCall, result: Any) -> LLMCall:
        return replace(current, request=result) if isinstance(result, LLMRequest) else current

    try:
        return await hookcall.call_pipeline(rt.pm, "before_llm_call", "call", call, adopt)
    except BudgetExceeded as exc:
        rt.metrics.budget_refusals.labels(exc.scope).inc()
        raise
    except Exception as exc:  # noqa: BLE001
        raise CallRefused(f"call refused: {type(exc).__name__}: {exc}") from exc


async def make_call(
    rt: Any, candidates: list[ProviderSettings], call: LLMCall,
    on_text: Callable[[str], Awaitable[None]] | None = None,
    on_first: Callable[[], None] | None = None,
    deadline: float | None = None,
) -> tuple[LLMCall, CallOutcome]:
    """Stream the call (retries, then the fallback), tell the observers, return what it produced.

    ``on_text`` receives each text chunk as it arrives, ``on_first`` is told
    when the first event (text or tool call) arrived. ``deadline`` (the event
    loop's clock) bounds the retries' waiting. A provider failure is
    ``outcome.error`` (the observers have heard it); a cancellation (a
    deadline, a shutdown) still tells them the call ended, then propagates.

    What a call streams is counted as it arrives (``exoclaw_hooks.count_chars``:
    the rule input estimates use; ``LLMCallResult.output_estimate``). A call
    with an ``output_limit`` (a budget reserved that much output and lowered
    ``max_tokens`` to fit it) that streams past it has an upstream ignoring
    ``max_tokens``, so the call is cut: nothing more is relayed, the upstream
    request is closed, and ``outcome.cut`` and ``outcome.error`` say so.
    """
    target = CallTarget(call.provider, call.model)
    out = CallOutcome()
    chunks: list[str] = []
    t0 = time.perf_counter()
    ttft: float | None = None
    limit = call.request.output_limit
    latin = dense = 0
    try:
        stream = stream_with_fallback(candidates, call.request, rt.provider_for, target, rt.retry_policy, deadline)
        try:
            async for event in stream:
                if ttft is None and not isinstance(event, StreamEnd):
                    ttft = time.perf_counter() - t0
                    if on_first is not None:
                        on_first()
                if isinstance(event, TextDelta):
                    a, d = count_chars(event.text)
                    latin, dense = latin + a, dense + d
                    if limit is not None and dense + -(-latin // 4) > limit:
                        out.cut = True
                        break
                    chunks.append(event.text)
                    if on_text is not None:
                        await on_text(event.text)
                elif isinstance(event, ToolUseEvent):  # a tool call's name and input are output too
                    a, d = count_chars(event.call.name + json.dumps(dict(event.call.input), ensure_ascii=False,
                                                                     default=str))
                    latin, dense = latin + a, dense + d
                    if limit is not None and dense + -(-latin // 4) > limit:
                        out.cut = True
                        break
                    out.calls.append(event.call)
                else:
                    out.usage, out.stop_reason = event.usage, event.stop_reason
        finally:
            await stream.aclose()  # closes the upstream request (at once when the call was cut)
        if out.cut:
            rt.metrics.output_cuts.labels(target.provider).inc()
            out.stop_reason = "max_tokens"
            out.error = (
                f"budget exceeded (output: the upstream streamed past the {call.request.max_tokens} tokens "
                "the budgets reserved for this reply, so it was cut)"
            )
            log.warning("event=llm_output_cut provider=%s model=%s max_tokens=%d",
                        quote(target.provider), quote(target.model), call.request.max_tokens)
    except ProviderError as exc:
        out.error = str(exc)
    except asyncio.CancelledError:
        # observers (metering's reservation) must still hear that the call ended
        result = LLMCallResult(out.usage, time.perf_counter() - t0, ttft, "cancelled", out.stop_reason,
                               dense + -(-latin // 4))
        await hookcall.call_all(rt.pm, "after_llm_call", call=call, result=result)
        raise
    duration = time.perf_counter() - t0
    out.text = "".join(chunks)
    labels = (target.provider, target.model)
    rt.metrics.llm_seconds.labels(*labels).observe(duration)
    if ttft is not None:
        rt.metrics.llm_ttft.labels(*labels).observe(ttft)
    rt.metrics.tokens.labels("input").inc(out.usage.input_tokens)
    rt.metrics.tokens.labels("output").inc(out.usage.output_tokens)
    if target.provider != call.provider or target.model != call.model:
        call = replace(call, provider=target.provider, model=target.model)
    result = LLMCallResult(out.usage, duration, ttft, out.error, out.stop_reason, dense + -(-latin // 4))
    log.info(
        "event=llm_call kind=%s provider=%s model=%s iteration=%d input_tokens=%d output_tokens=%d ms=%.1f%s",
        call.kind, target.provider, target.model, call.iteration, out.usage.input_tokens, out.usage.output_tokens,
        duration * 1000, f" error={quote(out.error)}" if out.error else "",
    )
    costs = [c for c in await hookcall.call_all(rt.pm, "after_llm_call", call=call, result=result) if isinstance(c, dict)]
    out.priced = bool(costs) and all(c.get("priced", True) for c in costs)
    out.cost_usd = sum(float(c.get("cost_usd", 0.0)) for c in costs)
    for c in costs:  # a metering plugin's scopes past their warning share (SPEC: budget.warning)
        for warning in c.get("budget_warnings") or ():
            if isinstance(warning, dict) and isinstance(warning.get("scope"), str):
                out.budget_warnings.append(warning)
                rt.metrics.budget_warnings.labels(warning["scope"]).inc()
    rt.metrics.cost.inc(out.cost_usd)
    return call, out


def _plugin_candidates(rt: Any, agent: AgentConfig, provider: str | None, model: str | None) -> list[ProviderSettings]:
    """Where a plugin's call goes: the agent's provider (and fallback), or the provider/model it named."""
    full: AgentConfig = rt.settings.agents.get(agent.id, agent)
    if provider is None and model is None:
        return candidates_of(full)
    settings = full.provider_settings()
    if provider is not None and provider != full.provider:
        info = rt.providers.get(provider)
        key = rt.settings.env.get(info.key_env) if info is not None and info.key_env else None
        settings = ProviderSettings(provider, model or (info.default_model if info else None) or provider,
                                    max_tokens=settings.max_tokens, api_key=key or None, timeout_s=settings.timeout_s)
    elif model is not None:
        settings = replace(settings, model=model)
    return [settings]


async def plugin_call(
    rt: Any, request: LLMRequest, *, agent: AgentConfig, route: Route, kind: str,
    provider: str | None = None, model: str | None = None,
) -> LLMReply:
    """``host.llm``: a call on a plugin's behalf, checked by budgets and metered like the agent's own.

    :raises BudgetExceeded: a budget refused it. :raises ProviderError: the provider failed.
    """
    candidates = _plugin_candidates(rt, agent, provider, model)
    first = candidates[0]
    request = replace(request, model=first.model)
    parts = route.session_key.split(":")  # each part escaped: splitting is exact
    person = ":".join(parts[:3]) if len(parts) == 4 else ""
    call = new_call(request, agent, route, kind=kind, person_key=person, provider=first.provider, model=first.model)
    try:
        call = await admit(rt, call)
    except CallRefused as exc:
        raise ProviderError(str(exc)) from exc
    call, out = await make_call(rt, candidates, call)
    if out.error:
        raise ProviderError(out.error.removeprefix("provider error: "))
    return LLMReply(out.text, tuple(out.calls), out.usage, out.stop_reason, out.cost_usd)
