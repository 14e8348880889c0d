"""The builtin ``metering`` plugin: every LLM call recorded, costed and capped (SPEC §8).

Hooks:

* ``before_llm_call`` — estimates the call's input tokens and admits it
  against the budgets (:mod:`.budgets`), or raises ``BudgetExceeded``; the
  core then ends the stream with ``token budget exceeded (<scope>: <used>/<limit>)``
  and makes no provider request. Registered ``trylast``, so a plugin that
  refuses or rewrites the call has spoken before a reservation is taken.
* ``after_llm_call`` — prices the call (:mod:`.pricing`), stores one
  :class:`UsageRecord` through ``host.store.record_usage``, logs one
  ``event=usage`` line, teaches the estimator, settles the reservation, and
  returns ``{"cost_usd", "priced"}`` for the turn's ``usage`` event. A failed
  call that used no tokens leaves no record (its reservation is released).
* ``register_methods`` — RPC ``budget.status``.
* ``status_info`` — ``{"budgets": {"scopes": [...]}}`` in ``status``.
* ``gateway_startup`` — reads today's and this month's counters from the store.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from exoclaw_hooks import InvalidParams, LLMCall, LLMCallResult, SettingsTable, UsageRecord, hookimpl

from .budgets import BudgetBook, iso_utc
from .estimator import Estimator
from .pricing import PriceTable
from .settings import PRICING, BudgetsConfig, BudgetsSchema, build_budgets, build_pricing

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
            "budgets", BudgetsSchema, apply=self._set_budgets, build=build_budgets,
            doc="Token budgets (input + output); absent = unlimited. A call that would exceed one is refused.",
        ))
        register(SettingsTable(
            "pricing", PRICING, apply=self._set_prices, build=build_pricing,
            doc='Overrides of the built-in prices, USD per million tokens: [pricing."provider:model"].',
        ))

    def _set_budgets(self, config: BudgetsConfig) -> None:
        self.config = config

    def _set_prices(self, prices: dict[str, Any]) -> None:
        self.prices = PriceTable(prices)

    def bind(self, host: Any) -> None:
        """Take the gateway's store and clock (idempotent for one host)."""
        if host is None or host is self.host:
            return
        self.host = host
        self.budgets = BudgetBook(self.config, host.store, host.now)

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
        """RPC ``budget.status``: ``{"scopes": [{"scope", "used", "limit", "period_start"}, ...]}``."""
        session = params.get("session")
        if session is not None and not isinstance(session, str):
            raise InvalidParams("session", "must be a string")
        assert self.budgets is not None
        return {"scopes": await self.budgets.report(session)}

    # ------------------------------------------------------------ calls

    @hookimpl(trylast=True)
    async def before_llm_call(self, call: LLMCall) -> None:
        budgets = self.budgets
        if budgets is None or not budgets.enabled or not budgets.scopes_for(call.agent.id):
            return None
        tokens, sample = self.estimator.estimate(call.provider, call.model, call.request)
        await budgets.admit(
            call.call_id, call.route.session_key, call.agent.id, tokens, call.request.max_tokens, sample
        )
        return None

    @hookimpl
    async def after_llm_call(self, call: LLMCall, result: LLMCallResult) -> dict[str, Any]:
        usage = result.usage
        session_key, agent_id = call.route.session_key, call.agent.id
        cost, priced = self.prices.cost(call.provider, call.model, usage)
        budgets = self.budgets
        reservation = budgets.reservation(call.call_id) if budgets is not None else None
        used_any = bool(
            usage.input_tokens or usage.output_tokens or usage.cache_read_tokens or usage.cache_write_tokens
        )
        ts: str | None = None
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
                        cost_usd=cost, priced=priced,
                    )
                    try:
                        await self.host.store.record_usage(record)
                    except Exception as exc:  # noqa: BLE001 - the budget still counts it below
                        log.error("event=usage_not_stored error=%s", _v(f"{type(exc).__name__}: {exc}"))
                log.info(
                    "event=usage provider=%s model=%s agent=%s input_tokens=%d output_tokens=%d "
                    "cache_read_tokens=%d cache_write_tokens=%d cost_usd=%.6f priced=%s%s",
                    _v(call.provider), _v(call.model), _v(agent_id), usage.input_tokens, usage.output_tokens,
                    usage.cache_read_tokens, usage.cache_write_tokens, cost, "true" if priced else "false",
                    "" if priced else " unpriced=true",
                )
            if reservation is not None and result.error is None:
                self.estimator.learn(
                    call.provider, call.model, reservation.sample,
                    usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens,
                )
        finally:
            # settle even when storing failed: a reservation must never leak
            if budgets is not None:
                first = await budgets.settle(call.call_id, session_key, agent_id, usage.total, ts)
                if first:
                    try:
                        await budgets.remember_session_start(session_key, ts or "")
                    except Exception as exc:  # noqa: BLE001
                        log.warning("event=session_start_not_stored error=%s", _v(f"{type(exc).__name__}: {exc}"))
        return {"cost_usd": cost, "priced": priced}

    def _warn_unpriced(self, provider: str, model: str) -> None:
        if (provider, model) in self._unpriced_warned or len(self._unpriced_warned) > 1000:
            return
        self._unpriced_warned.add((provider, model))
        log.warning(
            'event=unpriced_model provider=%s model=%s detail=%s',
            _v(provider), _v(model),
            _v(f'no price for {provider}:{model}: its calls cost 0 (add [pricing."{provider}:{model}"])'),
        )
