"""The builtin ``metering`` plugin: every LLM call recorded, costed and capped (SPEC §8).

Hooks:

* ``before_llm_call`` — estimates the call's input tokens and admits it
  against the budgets (:mod:`.budgets`), or raises ``BudgetExceeded``; the
  core then ends the stream with ``token budget exceeded (<scope>: <used>/<limit>)``
  (``budget exceeded (<scope>: $<used> of $<limit>)`` for a dollar scope)
  and makes no provider request. An admitted call is returned with
  ``max_tokens`` lowered to the output its reservation can pay for
  (:func:`.estimator.max_tokens_within`) and ``output_limit`` set to the
  reservation: the core cuts a stream that goes past it. Registered ``trylast``, so a plugin that refuses or rewrites the
  call has spoken before a reservation is taken.
* ``after_llm_call`` — prices the call (:mod:`.pricing`), stores one
  :class:`UsageRecord` through ``host.store.record_usage``, logs one
  ``event=usage`` line, teaches the estimator, settles the reservation, and
  returns ``{"cost_usd", "priced"}`` (plus ``"budget_warnings"`` when a scope
  passed ``warn_at``) for the turn's events. A failed call that used no tokens
  leaves no record (its reservation is released); a call whose upstream
  answered without reporting usage is charged its input estimate and its
  reserved output (no budget: the output the core counted), recorded
  ``estimated``.
* ``register_methods`` — RPC ``budget.status``.
* ``status_info`` — ``{"budgets": {"scopes": [...]}}`` in ``status``.
* ``gateway_startup`` — reads today's and this month's counters from the store.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
from typing import Any

from dataclasses import replace

from exoclaw_hooks import (
    ConfigContext,
    ConfigError,
    InvalidParams,
    LLMCall,
    LLMCallResult,
    LLMRequest,
    SettingsTable,
    Usage,
    UsageRecord,
    hookimpl,
    iso_utc,
)

from .budgets import BudgetBook, UnpricedCall
from .estimator import Estimator, max_tokens_within, output_allowance
from .pricing import PriceTable
from .settings import (
    PRICING,
    BudgetsConfig,
    BudgetsSchema,
    Price,
    build_budgets,
    build_pricing,
    unpriced_dollar_caps,
)

log = logging.getLogger("exoclaw.metering")


_PLAIN = re.compile(r"[\w.:/@+-]+")


def _v(value: str) -> str:
    """A log value: bare when it is one plain word, else JSON-quoted."""
    if _PLAIN.fullmatch(value):
        return value
    return json.dumps(value, ensure_ascii=False)


class MeteringPlugin:
    """One instance per gateway (the core instantiates it with no arguments)."""

    def __init__(self) -> None:
        self.host: Any = None
        self.prices = PriceTable()
        self.estimator = Estimator()
        self.budgets: BudgetBook | None = None
        self.config = BudgetsConfig()
        self._unpriced_warned: set[tuple[str, str]] = set()

    @hookimpl
    def register_settings(self, register: Any) -> None:
        register(SettingsTable(
            "budgets", BudgetsSchema, apply=self._set_budgets, build=self._build_budgets,
            doc="Budgets in tokens (input + output) and USD; absent = unlimited. A call that could exceed one "
                "is refused, and a call is sent with max_tokens lowered to what the budgets have left.",
        ))
        register(SettingsTable(
            "pricing", PRICING, apply=self._set_prices, build=self._build_pricing,
            doc='Overrides of the built-in prices, USD per million tokens: [pricing."provider:model"].',
        ))

    # The dollar caps need the prices and the prices the caps: whichever table is
    # built second (both are built on every configure) checks that every model a
    # dollar cap applies to has a price.
    def _build_budgets(self, data: Any, context: ConfigContext) -> BudgetsConfig:
        config = build_budgets(data, context)
        self._built_pair("budgets", config, context)
        return config

    def _build_pricing(self, data: Any, context: ConfigContext) -> dict[str, Price]:
        prices = build_pricing(data, context)
        self._built_pair("pricing", prices, context)
        return prices

    def _built_pair(self, name: str, value: Any, context: ConfigContext) -> None:
        built = self.__dict__.setdefault("_built", {})
        if name in built:  # a new configure: the other table's value is stale
            built.clear()
        built[name] = value
        if len(built) < 2 or not built["budgets"].has_dollars():
            return
        table = PriceTable(built["pricing"])
        problems = unpriced_dollar_caps(built["budgets"], context.agents, lambda p, m: table.lookup(p, m) is not None)
        if problems:
            raise ConfigError(problems)

    def _set_budgets(self, config: BudgetsConfig) -> None:
        self.config = config

    def _set_prices(self, prices: dict[str, Any]) -> None:
        self.prices = PriceTable(prices)

    def bind(self, host: Any) -> None:
        """Take the gateway's store and clock (idempotent for one host)."""
        if host is None or host is self.host:
            return
        self.host = host
        # the owner of this gateway's reservations in a shared store (what the gateway calls itself, if it says)
        owner = getattr(host, "instance_id", None) or f"{socket.gethostname()}:{os.getpid()}"
        self.budgets = BudgetBook(self.config, host.store, host.now, owner=owner)

    # ------------------------------------------------------------ lifecycle

    @hookimpl
    def register_methods(self, register: Any, host: Any) -> None:
        self.bind(host)
        register("budget.status", self.budget_status)

    @hookimpl
    async def gateway_startup(self, host: Any) -> None:
        self.bind(host)
        if self.budgets is not None and self.budgets.enabled:
            await self.budgets.load_periodic()
            log.info(
                "event=budgets scopes=%s",
                _v(",".join(f"{s.name}={s.limit}" for s in self.budgets.scopes)),
            )

    @hookimpl
    async def status_info(self, host: Any) -> dict[str, Any]:
        self.bind(host)
        assert self.budgets is not None
        return {"budgets": {"scopes": await self.budgets.report(None)}}

    async def budget_status(self, params: dict[str, Any]) -> dict[str, Any]:
        """RPC ``budget.status``: ``{"scopes": [{"scope", "used", "limit", "period_start"}, ...]}``
        (``"unit": "usd"`` on a dollar scope); ``people: true`` adds every person's own scopes
        (each with its ``"person"``) — what ``exoclaw usage --budgets`` shows."""
        session = params.get("session")
        if session is not None and not isinstance(session, str):
            raise InvalidParams("session", "must be a string")
        people = params.get("people", False)
        if not isinstance(people, bool):
            raise InvalidParams("people", "must be true or false")
        assert self.budgets is not None
        scopes = await self.budgets.report(session)
        if people:
            scopes += await self.budgets.report_people()
        return {"scopes": scopes}

    # ------------------------------------------------------------ calls

    @hookimpl(trylast=True)
    async def before_llm_call(self, call: LLMCall) -> LLMRequest | None:
        budgets = self.budgets
        if budgets is None or not budgets.enabled or not budgets.scopes_for(call.agent.id):
            return None
        request = call.request
        tokens, sample = self.estimator.estimate(call.provider, call.model, request)
        price = self.prices.lookup(call.provider, call.model)
        if price is None and budgets.needs_price(call.agent.id):
            raise UnpricedCall(
                f'no price for {call.provider}:{call.model} and a dollar budget applies '
                f'(add [pricing."{call.provider}:{call.model}"])'
            )
        reserved = await budgets.admit(
            call.call_id, call.route.session_key, call.agent.id, tokens, output_allowance(request.max_tokens),
            sample, price, least_out=output_allowance(1),
        )
        # send the call with what the budgets can pay for; the core cuts a stream that goes past it
        max_tokens = min(request.max_tokens, max(1, max_tokens_within(reserved)))
        return replace(request, max_tokens=max_tokens, output_limit=reserved)

    @hookimpl
    async def after_llm_call(self, call: LLMCall, result: LLMCallResult) -> dict[str, Any]:
        usage = result.usage
        session_key, agent_id = call.route.session_key, call.agent.id
        budgets = self.budgets
        reservation = budgets.reservation(call.call_id) if budgets is not None else None
        used_any = bool(
            usage.input_tokens or usage.output_tokens or usage.cache_read_tokens or usage.cache_write_tokens
        )
        estimated = False
        if not used_any and (result.error is None or result.ttft_s is not None):
            # the upstream answered (or started to) but reported no usage — a local server that
            # never does, a stream cut past its max_tokens: charge the estimate and the reserved output
            if reservation is not None:
                usage = Usage(reservation.input_est, reservation.max_out)
            else:  # no budget reserved anything: what the core counted on the stream
                usage = Usage(self.estimator.estimate(call.provider, call.model, call.request)[0],
                              max(1, result.output_estimate))
            used_any = estimated = True
        cost, priced = self.prices.cost(call.provider, call.model, usage)
        ts: str | None = None
        warnings: list[dict[str, Any]] = []
        try:
            if used_any:
                if not priced:
                    self._warn_unpriced(call.provider, call.model)
                ts = iso_utc(self.host.now()) if self.host is not None else None
                if ts is not None:
                    record = UsageRecord(
                        timestamp=ts, session_key=session_key, agent_id=agent_id,
                        provider=call.provider, model=call.model,
                        input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                        cache_read_tokens=usage.cache_read_tokens, cache_write_tokens=usage.cache_write_tokens,
                        cost_usd=cost, priced=priced, estimated=estimated,
                    )
                    try:
                        await self.host.store.record_usage(record)
                    except Exception as exc:  # noqa: BLE001 - the budget still counts it below
                        log.error("event=usage_not_stored error=%s", _v(f"{type(exc).__name__}: {exc}"))
                log.info(
                    "event=usage provider=%s model=%s agent=%s input_tokens=%d output_tokens=%d "
                    "cache_read_tokens=%d cache_write_tokens=%d cost_usd=%.6f priced=%s%s%s",
                    _v(call.provider), _v(call.model), _v(agent_id), usage.input_tokens, usage.output_tokens,
                    usage.cache_read_tokens, usage.cache_write_tokens, cost, "true" if priced else "false",
                    "" if priced else " unpriced=true", " estimated=true" if estimated else "",
                )
            if reservation is not None and result.error is None and not estimated:
                self.estimator.learn(
                    call.provider, call.model, reservation.sample,
                    usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens,
                )
        finally:
            # settle even when storing failed: a reservation must never leak
            if budgets is not None:
                first = await budgets.settle(call.call_id, session_key, agent_id, usage.total, ts, cost)
                if ts is not None:
                    warnings = await budgets.crossed(session_key, agent_id)
                if first:
                    try:
                        await budgets.remember_session_start(session_key, ts or "")
                    except Exception as exc:  # noqa: BLE001
                        log.warning("event=session_start_not_stored error=%s", _v(f"{type(exc).__name__}: {exc}"))
        for w in warnings:
            log.warning(
                "event=budget_warning scope=%s unit=%s used=%s limit=%s share=%.4f agent=%s",
                _v(w["scope"]), w["unit"], w["used"], w["limit"], w["share"], _v(agent_id),
            )
        out: dict[str, Any] = {"cost_usd": cost, "priced": priced}
        if warnings:
            out["budget_warnings"] = warnings
        return out

    def _warn_unpriced(self, provider: str, model: str) -> None:
        if (provider, model) in self._unpriced_warned or len(self._unpriced_warned) > 1000:
            return
        self._unpriced_warned.add((provider, model))
        log.warning(
            'event=unpriced_model provider=%s model=%s detail=%s',
            _v(provider), _v(model),
            _v(f'no price for {provider}:{model}: its calls cost 0 (add [pricing."{provider}:{model}"])'),
        )
