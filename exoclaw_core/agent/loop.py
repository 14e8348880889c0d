"""One turn: context → LLM ⇄ tools → commit → ``done`` → (outside the lane) learn.

Every step is a hook call through :mod:`exoclaw_core.hookcall`; nothing here
knows which plugin answers. A turn that fails stores nothing (no half-written
turn); a turn whose client went away still runs to completion and is stored
(its tokens are paid for). The turn speaks through a sink of typed events
(:mod:`.events`), ending with exactly one ``DONE``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from exoclaw_hooks import (
    AgentConfig,
    BudgetExceeded,
    StoreUnavailable,
    CompletedTurn,
    ContextPart,
    ContextPolicy,
    ContextRequest,
    IncomingMessage,
    LLMRequest,
    Message,
    Route,
    ToolSpec,
    Usage,
    make_person_key,
)

from .. import hookcall
from ..logs import quote, redact, request_id
from .calls import CallRefused, admit, make_call, new_call
from .context import build_context
from .events import DONE, BudgetWarningEvent, ErrorEvent, ErrorKind, Sink, TextEvent, TurnEvent, UsageEvent
from .llm import candidates_of
from .tools import run_tools

log = logging.getLogger("exoclaw.agent")

SHUTTING_DOWN = "turn cancelled: the gateway is shutting down"
#: ``Runtime.cancel``'s reason for a client's ``chat.cancel``
CANCELLED_BY_CLIENT = "turn cancelled by the client"
#: no plugin said how big the context may be: it is not trimmed
UNLIMITED = 1 << 40


@dataclass
class TurnOutcome:
    ok: bool
    reply: str = ""
    error: str | None = None
    kind: ErrorKind | None = None
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    priced: bool = True
    context_tokens: int = 0
    #: the gateway was stopping: the turn did not run (or was cut) and stored nothing
    cancelled: bool = False


class TurnFailed(Exception):
    def __init__(self, text: str, kind: ErrorKind):
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


def _once_done(sink: Sink) -> Sink:
    """Nothing is emitted after ``DONE``: whatever fails after it (a late cancellation)
    cannot give a stream a second ``DONE`` or an error after it."""
    ended = False

    async def guarded(event: TurnEvent) -> None:
        nonlocal ended
        if ended:
            return
        if event is DONE:
            ended = True
        await sink(event)

    return guarded


async def _fail(sink: Sink, kind: ErrorKind, text: str) -> None:
    await sink(ErrorEvent(kind, text))
    await sink(DONE)


async def run_turn(
    rt: Any, message: IncomingMessage, route: Route, sink: Sink, *, replaces: int | None = None,
    inbox_id: int | None = None,
) -> TurnOutcome:
    """Run one turn in the session's lane; its events go to ``sink``, ending with exactly one ``DONE``.

    Learning (``after_turn``) is started after the lane is released: the
    session's next turn does not wait for it.
    """
    agent: AgentConfig = rt.settings.agents[route.agent_id]
    sink = _once_done(sink)
    if rt.stopping:  # accepted while shutting down: answer, but do not start
        await _fail(sink, ErrorKind.CANCELLED, SHUTTING_DOWN)
        return TurnOutcome(ok=False, error=SHUTTING_DOWN, kind=ErrorKind.CANCELLED, cancelled=True)
    rid = uuid.uuid4().hex[:12]
    token = request_id.set(rid)
    rt.metrics.turns_in_flight.inc()
    try:
        async with rt.lanes.hold(route.session_key):
            outcome, learn = await _turn(rt, agent, message, route, sink, rid, replaces, inbox_id)
        rt.metrics.turns.labels(agent.id, "ok" if outcome.ok else "error").inc()
        if learn is not None:
            rt.spawn_background(_learn(rt, learn, rid))
        return outcome
    except asyncio.CancelledError:
        rt.metrics.turns.labels(agent.id, "cancelled").inc()
        reason = rt.cancel_reasons.get(asyncio.current_task(), SHUTTING_DOWN)
        log.info("event=turn_cancelled session=%s reason=%s", quote(route.session_key), quote(reason))
        # the stream still ends with exactly one done (a no-op if it was already sent)
        await asyncio.shield(_fail(sink, ErrorKind.CANCELLED, reason))
        raise
    except StoreUnavailable as exc:  # the database went away: say so, the gateway stays up and recovers
        text = f"storage unavailable, the turn was not stored: {redact(str(exc))}"
        rt.metrics.turns.labels(agent.id, "error").inc()
        rt.metrics.errors.labels(ErrorKind.STORE.value).inc()
        log.warning("event=turn_failed kind=store error=%s", quote(text))
        await _fail(sink, ErrorKind.STORE, text)
        return TurnOutcome(ok=False, error=text, kind=ErrorKind.STORE)
    except Exception as exc:  # noqa: BLE001 - a bug must still end the stream with one done
        rt.metrics.turns.labels(agent.id, "error").inc()
        rt.metrics.errors.labels("internal").inc()
        log.exception("event=turn_crashed error=%s", quote(f"{type(exc).__name__}: {exc}"))
        await _fail(sink, ErrorKind.INTERNAL, "internal error: the turn was not completed")
        return TurnOutcome(ok=False, error="internal error", kind=ErrorKind.INTERNAL)
    finally:
        rt.committing.discard(asyncio.current_task())
        rt.metrics.turns_in_flight.dec()
        request_id.reset(token)


async def _learn(rt: Any, turn: CompletedTurn, rid: str) -> None:
    token = request_id.set(rid)
    try:
        await hookcall.call_all(rt.pm, "after_turn", turn=turn)
    finally:
        request_id.reset(token)


async def _turn(
    rt: Any, agent: AgentConfig, message: IncomingMessage, route: Route, sink: Sink, rid: str,
    replaces: int | None = None, inbox_id: int | None = None,
) -> tuple[TurnOutcome, CompletedTurn | None]:
    started = time.perf_counter()
    public = rt.agents[agent.id]
    person_key = make_person_key(agent.id, message.channel, message.account)
    log.info("event=turn_start agent=%s session=%s chars=%d", agent.id, quote(route.session_key), len(message.content))
    outcome = TurnOutcome(ok=False)
    try:
        if replaces is not None:  # in the lane: is the turn to replace still the session's last?
            last = await rt.store.load_turns(route.session_key, 1)
            replaces = replaces if last and last[-1].seq == replaces else None
        parts: list[ContextPart] = _flatten(
            await hookcall.call_all(
                rt.pm, "assemble_context", concurrent=True,
                request=ContextRequest(public, route, message, person_key, rt.store),
            )
        )
        if replaces is not None:  # the answer being replaced is not shown to the model
            parts = [p for p in parts if not (p.kind == "turn" and p.turn is not None and p.turn.seq == replaces)]
        policy = await hookcall.call_first(rt.pm, "context_policy", agent=public)
        if isinstance(policy, ContextPolicy):
            ctx = build_context(agent, message, parts, policy.tokens, policy.shares)
        else:
            ctx = build_context(agent, message, parts, UNLIMITED)
        outcome.context_tokens = ctx.tokens
        if log.isEnabledFor(logging.DEBUG):
            log.debug("event=context tokens=%d composition=%s dropped=%s", ctx.tokens,
                      quote(json.dumps(ctx.composition)), quote(json.dumps(ctx.dropped)))
        tools: tuple[ToolSpec, ...] = tuple(_flatten(await hookcall.call_all(rt.pm, "list_tools", agent=public)))
        turn_deadline = asyncio.get_running_loop().time() + agent.turn_timeout_s
        try:
            async with asyncio.timeout_at(turn_deadline):
                new_messages = await _llm_tool_loop(
                    rt, agent, route, person_key, ctx, tools, sink, outcome, rid, turn_deadline)
        except TimeoutError:
            raise TurnFailed(
                f"turn stopped: it took longer than its deadline of {agent.turn_timeout_s:g} s (turn_timeout_s)",
                ErrorKind.DEADLINE,
            ) from None
        # the turn is committed before ``done``: done means "stored". From here on
        # Runtime.cancel refuses (a cancel already requested wins: nothing is stored)
        task = asyncio.current_task()
        if task is not None:
            if task.cancelling():
                raise asyncio.CancelledError()
            rt.committing.add(task)
        stored = (Message(role="user", content=message.content),) + tuple(new_messages)
        answers = None if inbox_id is None else (inbox_id, outcome.reply)
        turn = await rt.store.append_turn(route.session_key, agent.id, stored, outcome.usage.total,
                                          speaker=message.sender, context=ctx.composition, replaces=replaces,
                                          answers=answers)
        outcome.ok = True
    except TurnFailed as exc:
        # a provider's or plugin's own text may quote a credential: never stream one
        text = redact(exc.text)
        outcome.error, outcome.kind = text, exc.kind
        rt.metrics.errors.labels(exc.kind.value).inc()
        log.warning("event=turn_failed kind=%s error=%s", exc.kind.value, quote(text))
        await _fail(sink, exc.kind, text)
        return outcome, None
    await sink(UsageEvent(outcome.usage, outcome.cost_usd, outcome.priced, ctx.composition))
    await sink(DONE)
    log.info(
        "event=turn_done agent=%s session=%s input_tokens=%d output_tokens=%d cost_usd=%.6f context_tokens=%d ms=%.1f",
        agent.id, quote(route.session_key), outcome.usage.input_tokens, outcome.usage.output_tokens,
        outcome.cost_usd, outcome.context_tokens, (time.perf_counter() - started) * 1000,
    )
    return outcome, CompletedTurn(public, route, message, person_key, turn, outcome.reply, outcome.usage, rt.store)


async def _llm_tool_loop(
    rt: Any, agent: AgentConfig, route: Route, person_key: str, ctx: Any, tools: tuple[ToolSpec, ...],
    sink: Sink, outcome: TurnOutcome, rid: str, turn_deadline: float,
) -> list[Message]:
    """Call the model, run the tools it asks for, feed the results back; return the new messages."""
    new: list[Message] = []
    candidates = candidates_of(agent)

    async def on_text(text: str) -> None:
        await sink(TextEvent(text))

    for iteration in range(agent.max_tool_iterations + 1):
        request = LLMRequest(
            model=agent.model, system=ctx.system, messages=ctx.messages + tuple(new),
            tools=tools, max_tokens=agent.max_tokens,
        )
        call = new_call(request, agent, route, iteration=iteration, request_id=rid, person_key=person_key)
        try:
            call = await admit(rt, call)
        except BudgetExceeded as exc:
            raise TurnFailed(str(exc), ErrorKind.BUDGET) from exc
        except CallRefused as exc:
            raise TurnFailed(str(exc), ErrorKind.REFUSED) from exc
        call, result = await _deadlined_call(rt, agent, candidates, call, on_text, turn_deadline)
        outcome.usage = outcome.usage + result.usage
        outcome.cost_usd += result.cost_usd
        outcome.priced = outcome.priced and result.priced
        for warning in result.budget_warnings:
            await sink(BudgetWarningEvent(warning))
        if result.cut:  # the upstream streamed past the output a budget reserved for the call
            raise TurnFailed(result.error or "budget exceeded", ErrorKind.BUDGET)
        if result.error:
            raise TurnFailed(result.error, ErrorKind.PROVIDER)
        outcome.reply += result.text
        if not result.calls:
            new.append(Message(role="assistant", content=result.text))
            return new
        if iteration == agent.max_tool_iterations:
            raise TurnFailed(
                f"tool loop stopped: the model still asked for tools after {agent.max_tool_iterations} iterations "
                "(max_tool_iterations)", ErrorKind.TOOL_LOOP,
            )
        new.append(Message(role="assistant", content=result.text, tool_calls=tuple(result.calls)))
        results = await run_tools(rt, rt.agents[agent.id], route, result.calls, sink, rid)
        new.append(Message(role="tool", tool_results=tuple(results)))
    raise AssertionError("unreachable")


async def _deadlined_call(
    rt: Any, agent: AgentConfig, candidates: Any, call: Any, on_text: Any, turn_deadline: float
) -> Any:
    """One call within its deadlines: its first event within ``first_byte_timeout_s``, all of it
    within ``call_timeout_s`` (a pinging or trickling upstream is cut; the request is closed)."""
    loop = asyncio.get_running_loop()
    now = loop.time()
    call_deadline = min(now + agent.call_timeout_s, turn_deadline)
    first: list[bool] = []
    try:
        async with asyncio.timeout_at(min(now + agent.first_byte_timeout_s, call_deadline)) as limit:

            def on_first() -> None:
                first.append(True)
                limit.reschedule(call_deadline)

            return await make_call(rt, candidates, call, on_text, on_first, turn_deadline)
    except TimeoutError:
        if loop.time() >= turn_deadline:
            raise  # the turn's own deadline: reported by the turn
        if not first:
            text = f"provider error: timeout: no output within {agent.first_byte_timeout_s:g} s (first_byte_timeout_s)"
        else:
            text = f"provider error: timeout: the call took longer than {agent.call_timeout_s:g} s (call_timeout_s)"
        raise TurnFailed(text, ErrorKind.DEADLINE) from None
