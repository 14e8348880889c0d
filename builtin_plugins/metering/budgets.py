"""Budgets in tokens and dollars: counters per scope, reservations for calls in flight (SPEC §8).

Scopes, in the order they are checked and named in a refusal::

    session, daily, monthly, session_usd, daily_usd, monthly_usd,
    agent:<id>:<same six>, person:<same six>

A token budget counts tokens = input + output (cache reads and writes are
priced, not budgeted); a dollar budget counts the calls' cost. ``session``
is a session's whole life, ``daily`` the UTC day, ``monthly`` the UTC
calendar month; the agent scopes count only that agent's calls, a person
scope one person's (the channel + account of the session key: every person
has a budget of their own). The clock is the gateway's (``host.now()``),
injectable in tests.

**Counters** (what was committed, tokens and USD) live in memory and come
from the store: a counter is initialised once with ``store.sum_tokens`` /
``store.sum_usage`` (daily and monthly ones at start-up, a session's or a
person's on first use), and from then on every usage record of this gateway
is added to it after it was stored. A day or month rolls over without
reading the store again: the counter of the new period starts at 0 and each
record counts in the period of its own timestamp.

**Reservations** keep concurrent turns from overspending. An admitted call
holds its worst case — the input estimate plus the output reserved for it,
in tokens and priced (input at the dearest of the model's input, cache-read
and cache-write prices) — until it is settled in ``after_llm_call``. A new
call with input ``e`` (in a scope's unit) is checked, for every scope,
against the committed ``used`` and the reservations ``others`` of the other
calls in flight in that scope:

* ``used + others.input + e > limit`` → refused (the first such scope is
  named with what it had ``used`` before this call).
* else the output that still fits is ``limit - used - others.worst - e``
  (divided by the output price for a dollar scope); the call's output is
  reserved as the least of that over its scopes and its ``max_tokens``, and
  the call is *sent* with ``max_tokens`` lowered to fit it: the core cuts a
  stream that goes past it (an upstream ignoring ``max_tokens``), so no
  call can spend more than was reserved for it.
* a call for which less than a useful output fits (``min(max_tokens, 256)``)
  *waits* (at most ``wait_timeout_s``) while other calls are in flight in
  the scope that is short — they may use less than they reserved — and is
  then checked again; with nothing to wait for it is admitted with what
  fits, and at least ``least_out`` (the output of ``max_tokens = 1``): a
  call whose input reaches the limit exactly is still allowed (SPEC §8), so
  a budget is overspent by at most that one call's least output.

A waiter takes the current *wake-up* future in the same step as its check
(no ``await`` between them), and every release of a reservation resolves
that future and starts a new one: a settle can never fall between a
waiter's check and its wait and go unheard (with an ``asyncio.Condition``
it could: a waiter re-queueing for the condition's lock while others were
being woken missed the next settle and slept for the whole
``wait_timeout_s`` — the 30 s stall of issue 17).

A reservation that is never settled (a turn cancelled at shutdown, another
plugin refusing the call after this one admitted it) must not block a budget
forever: turns of one session run one after another, so a new call of a
session drops any older reservation of that session, and reservations expire
after ``reservation_ttl_s``.

**Warnings**: with ``warn_at`` set, the first settle that brings a scope's
counter past that share of its limit in a period reports it once
(:meth:`BudgetBook.crossed`); the plugin turns it into a log line and the
turn's ``budget.warning`` event. Which were reported is kept in memory and
in the store's key-value namespace, so a restart does not repeat one.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import logging
import math
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

from exoclaw_hooks import BudgetExceeded

from . import shared as shared_store
from .settings import LIMIT_KEYS, BudgetLimits, BudgetsConfig

log = logging.getLogger("exoclaw.metering")

KINDS = ("session", "daily", "monthly")
KV_NAMESPACE = "metering"
#: session and person counters kept in memory before the idle ones are dropped (re-read from the store on use)
MAX_SESSION_COUNTERS = 50_000
#: dollar comparisons ignore float noise below this
EPSILON_USD = 1e-9

#: ``(kind, who, id)``: who is "" (everyone), "agent", "person" or "session"
CounterKey = tuple[str, str, str]


class UnpricedCall(Exception):
    """A dollar budget applies to a call of a model that has no price: it cannot be checked."""


@dataclass(frozen=True, slots=True)
class Scope:
    """One configured limit."""

    name: str  # "session", "daily_usd", "agent:work:monthly", "person:daily_usd" …
    kind: str  # "session" | "daily" | "monthly"
    limit: float  # tokens, or USD when ``usd``
    agent: str | None = None  # None: every agent
    usd: bool = False
    person: bool = False  # one such budget per person

    @property
    def unit(self) -> str:
        return "usd" if self.usd else "tokens"


@dataclass(slots=True)
class Counter:
    period: str  # ISO start of the period ("" for a session: its whole life)
    used: int  # tokens
    usd: float = 0.0
    first_ts: str | None = None  # sessions: the first usage (budget.status' period_start)


@dataclass(slots=True)
class Reservation:
    call_id: str
    session_key: str
    agent_id: str
    person: str
    input_est: int
    max_out: int
    in_usd: float  # the input estimate priced at the dearest input price
    out_usd: float  # USD per output token
    sample: Any  # the estimator's measure of the request, to learn from after the call
    created: float  # time.monotonic()

    @property
    def worst(self) -> int:
        return self.input_est + self.max_out

    @property
    def worst_usd(self) -> float:
        return self.in_usd + self.max_out * self.out_usd


def _utc(moment: _dt.datetime) -> _dt.datetime:
    if moment.tzinfo is not None and moment.utcoffset():
        return moment.astimezone(_dt.timezone.utc)
    return moment


_periods_cache: tuple[_dt.date, str, str] | None = None


def _periods(moment: _dt.datetime) -> tuple[str, str]:
    """``(day start, month start)`` of ``moment`` (cached: this runs on every check)."""
    global _periods_cache
    day = _utc(moment).date()
    cached = _periods_cache
    if cached is None or cached[0] != day:
        iso = day.isoformat()
        cached = _periods_cache = (day, f"{iso}T00:00:00Z", f"{iso[:7]}-01T00:00:00Z")
    return cached[1], cached[2]


def period_start(kind: str, moment: _dt.datetime) -> str:
    """The start of the UTC day / month containing ``moment`` (``""`` for a session)."""
    if kind == "daily":
        return _periods(moment)[0]
    if kind == "monthly":
        return _periods(moment)[1]
    return ""


def _period_of_ts(kind: str, ts: str) -> str:
    """Like :func:`period_start` for an ISO timestamp made by :func:`exoclaw_hooks.iso_utc`."""
    if kind == "daily":
        return f"{ts[:10]}T00:00:00Z"
    if kind == "monthly":
        return f"{ts[:7]}-01T00:00:00Z"
    return ""


_UNESCAPE = re.compile(r"%(25|3A)", re.IGNORECASE)


def agent_of_session(session_key: str) -> str:
    """The agent id of a session key (its first part, ``%3A``/``%25`` unescaped)."""
    first = session_key.split(":", 1)[0]
    return _UNESCAPE.sub(lambda m: "%" if m.group(1) == "25" else ":", first)


def person_of_session(session_key: str) -> str:
    """The person of a session key: its ``channel:account`` parts as escaped in it ("" when it has none)."""
    parts = session_key.split(":")
    return f"{parts[1]}:{parts[2]}" if len(parts) == 4 else ""


def _scopes_of(limits: Any, prefix: str, agent: str | None = None, person: bool = False) -> list[Scope]:
    out = []
    for key in LIMIT_KEYS:
        limit = getattr(limits, key)
        if limit is not None:
            kind = key.removesuffix("_usd")
            out.append(Scope(f"{prefix}{key}", kind, limit, agent, key.endswith("_usd"), person))
    return out


def configured_scopes(config: BudgetsConfig) -> list[Scope]:
    """Every configured limit, in check order (agents in config order, then the person's)."""
    scopes = _scopes_of(config, "")
    for agent_id, limits in config.agents.items():
        scopes.extend(_agent_scopes(agent_id, limits))
    if config.person is not None:
        scopes.extend(_scopes_of(config.person, "person:", person=True))
    return scopes


def _agent_scopes(agent_id: str, limits: BudgetLimits) -> list[Scope]:
    return _scopes_of(limits, f"agent:{agent_id}:", agent_id)


def refusal(scope: Scope, used: float) -> BudgetExceeded:
    """The error naming ``scope`` with what it had used: tokens as ``used/limit``, dollars as ``$used of $limit``."""
    return BudgetExceeded(scope.name, used, scope.limit, unit=scope.unit)


class BudgetBook:
    """The counters and reservations of one gateway.

    :param config: the ``[budgets]`` table.
    :param store: the :class:`exoclaw_hooks.Store` (``sum_tokens``, ``sum_usage``, ``usage_report``, ``kv_*``).
    :param clock: the current UTC time (``host.now``).
    """

    def __init__(
        self,
        config: BudgetsConfig,
        store: Any,
        clock: Callable[[], _dt.datetime],
        *,
        wait_timeout_s: float = 30.0,
        reservation_ttl_s: float = 1800.0,
        useful_output: int = 256,
        owner: str = "gateway",
        hold_s: float = 600.0,
    ):
        self.config = config
        self.store = store
        self.clock = clock
        self.wait_timeout_s = wait_timeout_s
        self.reservation_ttl_s = reservation_ttl_s
        self.useful_output = useful_output
        self.scopes = configured_scopes(config)
        self.has_usd = any(s.usd for s in self.scopes)
        self._by_agent: dict[str, list[Scope]] = {}
        self._counters: dict[CounterKey, Counter] = {}
        self._lru: OrderedDict[CounterKey, None] = OrderedDict()  # loaded session and person counters
        self._loading: dict[CounterKey, asyncio.Future[None]] = {}
        self._inflight: dict[str, Reservation] = {}
        #: resolved (and replaced) whenever a reservation is released: what waiters wait on
        self._released: asyncio.Future[None] | None = None
        #: (scope name, counter key) -> the period it last warned in
        self._warned: dict[tuple[str, CounterKey], str] = {}
        describe = getattr(store, "describe", None)
        #: several gateways use the store: admissions go through its counters (:mod:`.shared`)
        self.shared = bool(describe().get("shared", False)) if callable(describe) else False
        self.owner = owner  # the gateway's id on its reservations in the store
        self.hold_s = hold_s  # a shared reservation not settled by then (its gateway died) expires
        self._held: dict[str, shared_store.Held] = {}

    @property
    def enabled(self) -> bool:
        return bool(self.scopes)

    def scopes_for(self, agent_id: str) -> list[Scope]:
        """The scopes a call of ``agent_id`` is checked against, in order."""
        scopes = self._by_agent.get(agent_id)
        if scopes is None:
            scopes = [s for s in self.scopes if s.agent is None or s.agent == agent_id]
            self._by_agent[agent_id] = scopes
        return scopes

    def needs_price(self, agent_id: str) -> bool:
        """A dollar scope applies to the calls of ``agent_id``."""
        return any(s.usd for s in self.scopes_for(agent_id))

    # ------------------------------------------------------------ counters

    @staticmethod
    def _key(scope: Scope, session_key: str, person: str) -> CounterKey:
        if scope.kind == "session":
            return ("session", "session", session_key)
        if scope.person:
            return (scope.kind, "person", person)
        if scope.agent is not None:
            return (scope.kind, "agent", scope.agent)
        return (scope.kind, "", "")

    async def load_periodic(self) -> None:
        """Initialise the daily and monthly counters of everyone and of each agent from the store (at start-up)."""
        now = self.clock()
        keys = {self._key(s, "", "") for s in self.scopes if s.kind != "session" and not s.person}
        await asyncio.gather(*(self._ensure(k, now) for k in keys))

    async def _ensure(self, key: CounterKey, now: _dt.datetime) -> None:
        """Make sure ``key`` has a counter (read from the store once, shared by concurrent callers)."""
        counter = self._counters.get(key)
        if counter is not None:
            if key in self._lru:
                self._lru.move_to_end(key)
            return
        pending = self._loading.get(key)
        if pending is None:
            pending = self._loading[key] = asyncio.ensure_future(self._load(key, now))
            pending.add_done_callback(lambda _f, k=key: self._loading.pop(k, None))
        await asyncio.shield(pending)

    async def _load(self, key: CounterKey, now: _dt.datetime) -> None:
        kind, who, ident = key
        period = period_start(kind, now)
        filters: dict[str, str] = {}
        if who == "session":
            filters["session_key"] = ident
        elif who == "agent":
            filters["agent_id"] = ident
        elif who == "person":
            filters["person"] = ident
        if self.has_usd or who == "person":
            used, usd = await self.store.sum_usage(period, **filters)
        else:
            used, usd = await self.store.sum_tokens(period, **filters), 0.0
        # everything this gateway records from now on is added by commit()
        self._counters[key] = Counter(period, int(used), float(usd))
        if who in ("session", "person"):
            self._lru[key] = None
            self._evict()

    def _evict(self) -> None:
        if len(self._lru) <= MAX_SESSION_COUNTERS:
            return
        busy: set[CounterKey] = set()
        for r in self._inflight.values():
            busy.add(("session", "session", r.session_key))
            busy.update((k, "person", r.person) for k in ("daily", "monthly"))
        for key in list(self._lru):
            if len(self._lru) <= MAX_SESSION_COUNTERS:
                break
            if key not in busy:
                del self._lru[key]
                self._counters.pop(key, None)

    def _counter(
        self, key: CounterKey, now: _dt.datetime, periods: tuple[str, str] | None = None
    ) -> tuple[Counter, str]:
        """The counter of ``key`` at ``now`` (rolling the period over) and its period start;
        ``periods``: ``_periods(now)`` when the caller has it already."""
        counter = self._counters[key]
        kind = key[0]
        if kind == "session":
            return counter, ""
        day, month = periods or _periods(now)
        period = day if kind == "daily" else month
        if counter.period < period:  # a new day / month: nothing spent in it yet
            counter.period, counter.used, counter.usd = period, 0, 0.0
        return counter, period

    def _used(self, key: CounterKey, now: _dt.datetime) -> tuple[int, str]:
        """``(committed tokens, period start)`` of ``key`` at ``now``."""
        counter, period = self._counter(key, now)
        return counter.used, period

    def commit(self, session_key: str, agent_id: str, tokens: int, ts: str, usd: float = 0.0) -> bool:
        """Add a stored record's ``tokens`` and ``usd`` (made at ``ts``) to the loaded counters it belongs to.

        Returns ``True`` when this was the first usage of a tracked session.
        """
        first = False
        person = person_of_session(session_key)
        for key in (("session", "session", session_key), ("daily", "", ""), ("monthly", "", ""),
                    ("daily", "agent", agent_id), ("monthly", "agent", agent_id),
                    ("daily", "person", person), ("monthly", "person", person)):
            counter = self._counters.get(key)
            if counter is None:  # not tracked, or not loaded yet: the store has the record
                continue
            kind = key[0]
            if kind == "session":
                if counter.used == 0 and counter.first_ts is None and tokens > 0:
                    counter.first_ts = ts
                    first = True
                counter.used += tokens
                counter.usd += usd
                continue
            period = _period_of_ts(kind, ts)
            if period == counter.period:
                counter.used += tokens
                counter.usd += usd
            elif period > counter.period:
                counter.period, counter.used, counter.usd = period, tokens, usd
            # a record of an earlier period (clock moved back): not this period's
        return first

    # ------------------------------------------------------------ admission

    def _wake_waiters(self) -> None:
        """A reservation was released: every call waiting to be admitted checks again."""
        released, self._released = self._released, None
        if released is not None and not released.done():
            released.set_result(None)

    def _purge(self, session_key: str, now_mono: float) -> None:
        stale = [
            r.call_id
            for r in self._inflight.values()
            if r.session_key == session_key or now_mono - r.created > self.reservation_ttl_s
        ]
        for call_id in stale:
            r = self._inflight.pop(call_id)  # a shared one stays held: its settle still counts the spend
            log.warning(
                "event=budget_reservation_dropped agent=%s tokens=%d reason=%s",
                r.agent_id, r.worst, "expired" if r.session_key != session_key else "superseded",
            )
        if stale:
            self._wake_waiters()

    def _check(
        self, scopes: list[Scope], session_key: str, agent_id: str, person: str, estimate: int,
        in_usd: float, out_usd: float, max_out: int, least: int, now: _dt.datetime,
    ) -> tuple[str, Scope | None, float, int]:
        """``(verdict, scope, used, output)`` for a new call: ``"ok"`` with the output to reserve,
        ``"wait"`` or ``"refuse"`` naming a scope and what it had used (see the module docstring)."""
        waiting: tuple[Scope, float] | None = None
        inflight = self._inflight.values()
        useful = max(least, min(max_out, self.useful_output))
        output = max_out
        periods = _periods(now)
        for scope in scopes:
            if scope.person and not person:
                continue
            counter, _ = self._counter(self._key(scope, session_key, person), now, periods)
            others_in = others_worst = 0.0
            busy = False
            if inflight:
                for r in inflight:
                    if scope.kind == "session":
                        mine = r.session_key == session_key
                    elif scope.person:
                        mine = r.person == person
                    else:
                        mine = scope.agent is None or r.agent_id == scope.agent
                    if mine:
                        busy = True
                        if scope.usd:
                            others_in += r.in_usd
                            others_worst += r.worst_usd
                        else:
                            others_in += r.input_est
                            others_worst += r.worst
            if scope.usd:
                used: float = counter.usd
                cost_in, per_out, slack = in_usd, out_usd, EPSILON_USD
            else:
                used, cost_in, per_out, slack = counter.used, estimate, 1.0, 0.0
            if used + others_in + cost_in > scope.limit + slack:
                return "refuse", scope, used, 0
            room = scope.limit - used - others_worst - cost_in + slack
            fits = max_out if per_out <= 0 else max(0, min(max_out, math.floor(room / per_out)))
            if fits < useful and busy and waiting is None:
                waiting = (scope, used)
            output = min(output, max(fits, least))
        if waiting is not None:
            return "wait", waiting[0], waiting[1], 0
        return "ok", None, 0, output

    async def admit(
        self, call_id: str, session_key: str, agent_id: str, estimate: int, max_out: int, sample: Any = None,
        price: Any = None, least_out: int = 1,
    ) -> int:
        """Admit a call, holding its reservation; return the output tokens reserved for it (at most
        ``max_out``, at least ``least_out``), or raise :class:`BudgetExceeded`.

        ``price`` (a :class:`~.settings.Price`) is needed when a dollar scope applies
        (:class:`UnpricedCall` without it).
        """
        scopes = self.scopes_for(agent_id)
        max_out = max(0, int(max_out))
        if not scopes:
            return max_out
        in_usd = out_usd = 0.0
        if self.has_usd and any(s.usd for s in scopes):
            if price is None:
                raise UnpricedCall("the model has no price and a dollar budget applies")
            dearest = max(price.input, price.input if price.cache_read is None else price.cache_read,
                          price.input if price.cache_write is None else price.cache_write)
            in_usd, out_usd = estimate * dearest / 1e6, price.output / 1e6
        person = person_of_session(session_key)
        now = self.clock()
        counters = self._counters
        for scope in scopes:
            if scope.person and not person:
                continue
            key = self._key(scope, session_key, person)
            if key not in counters or key in self._lru:
                await self._ensure(key, now)
        if self._inflight:
            self._purge(session_key, time.monotonic())
        if self.shared:
            output = await self._admit_shared(
                call_id, scopes, session_key, person, estimate, in_usd, out_usd, max_out, min(least_out, max_out),
                now)
            self._inflight[call_id] = Reservation(
                call_id, session_key, agent_id, person, estimate, output, in_usd, out_usd, sample, time.monotonic())
            return output
        deadline: float | None = None
        while True:
            now = self.clock()
            verdict, scope, used, output = self._check(
                scopes, session_key, agent_id, person, estimate, in_usd, out_usd, max_out, min(least_out, max_out),
                now)
            if verdict == "ok":
                self._inflight[call_id] = Reservation(
                    call_id, session_key, agent_id, person, estimate, output, in_usd, out_usd, sample,
                    time.monotonic(),
                )
                return output
            assert scope is not None
            if verdict == "refuse":
                raise refusal(scope, used)
            loop = asyncio.get_running_loop()
            if deadline is None:
                deadline = loop.time() + self.wait_timeout_s
            remaining = deadline - loop.time()
            if remaining <= 0:
                log.warning("event=budget_wait_timeout scope=%s waited_s=%.1f", scope.name, self.wait_timeout_s)
                raise refusal(scope, used)
            # taken in the same step as the check above: a release after it resolves this future
            released = self._released
            if released is None:
                released = self._released = loop.create_future()
            try:
                await asyncio.wait_for(asyncio.shield(released), remaining)
            except asyncio.TimeoutError:
                pass

    def _shared_counters(
        self, scopes: list[Scope], session_key: str, person: str, now: _dt.datetime,
    ) -> list[tuple[Scope, str, int, int]]:
        """``(scope, store key, limit, seed)`` of each scope of a call, in the store's integer units."""
        out = []
        periods = _periods(now)
        for scope in scopes:
            if scope.person and not person:
                continue
            key = self._key(scope, session_key, person)
            counter, period = self._counter(key, now, periods)
            if scope.usd:
                limit, seed = math.floor(scope.limit * shared_store.MICRO + 1e-6), shared_store.micro(counter.usd)
            else:
                limit, seed = int(scope.limit), counter.used
            out.append((scope, shared_store.counter_key(key[0], scope.usd, period, key[1], key[2]), limit, seed))
        return out

    async def _admit_shared(
        self, call_id: str, scopes: list[Scope], session_key: str, person: str, estimate: int,
        in_usd: float, out_usd: float, max_out: int, least: int, now: _dt.datetime,
    ) -> int:
        """:meth:`admit` on a shared store: the same rules as :meth:`_check`, the figures the store's.

        The first try reserves the whole worst case; when a counter has not that much left, its
        ``(used, reserved)`` decide: refused when ``used`` + the input alone passes the limit, else
        the output that fits is reserved; while only other calls' reservations leave less than a
        useful output, it polls (short backoff, up to ``wait_timeout_s``) instead of refusing.
        """
        entries = self._shared_counters(scopes, session_key, person, now)
        in_micro, out_micro = shared_store.micro(in_usd), out_usd * shared_store.MICRO
        useful = max(least, min(max_out, self.useful_output))
        tokens = {key: (limit, seed) for scope, key, limit, seed in entries if not scope.usd}
        dollars = {key: (limit, seed) for scope, key, limit, seed in entries if scope.usd}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_timeout_s
        delay = 0.02
        output = max_out
        raced = 0  # tries in a row that found less room than the counters had just shown
        while True:
            held = await shared_store.reserve(
                self.store, self.owner, self.hold_s, tokens, estimate + output,
                dollars, in_micro + math.ceil(output * out_micro))
            if held is not None:
                self._held[call_id] = held
                return max(output, least)
            seen = await self.store.budget_counters([key for _, key, _, _ in entries])
            waiting: tuple[Scope, float] | None = None
            first: tuple[Scope, float] | None = None
            output = max_out
            for scope, key, limit, seed in entries:
                used, reserved = seen.get(key, (seed, 0))
                cost_in, per_out = (in_micro, out_micro) if scope.usd else (estimate, 1.0)
                shown = used / shared_store.MICRO if scope.usd else used
                if used + cost_in > limit:
                    raise refusal(scope, shown)
                room = limit - used - reserved - cost_in
                fits = max_out if per_out <= 0 else max(0, min(max_out, math.floor(room / per_out)))
                while fits > 0 and math.ceil(fits * per_out) > room:  # the amount reserved is rounded up
                    fits -= 1
                if fits < useful and reserved > 0 and waiting is None:
                    waiting = (scope, shown)
                first = first or (scope, shown)
                output = min(output, fits)
            if waiting is None:
                raced += 1
                if raced < 4:
                    continue  # reserve what fits now (if another call took it meanwhile: look again)
                waiting = first  # others keep taking it first: back off like a waiter
            assert waiting is not None
            remaining = deadline - loop.time()
            if remaining <= 0:
                log.warning("event=budget_wait_timeout scope=%s waited_s=%.1f shared=true",
                            waiting[0].name, self.wait_timeout_s)
                raise refusal(*waiting)
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.5)
            output = max_out

    def reservation(self, call_id: str) -> Reservation | None:
        return self._inflight.get(call_id)

    async def settle(
        self, call_id: str, session_key: str, agent_id: str, tokens: int, ts: str | None, usd: float = 0.0
    ) -> bool:
        """Commit a finished call's ``tokens`` and ``usd`` (``ts``: its record's time; ``None``: nothing
        recorded) and release its reservation, in one step. Returns :meth:`commit`'s answer."""
        first = False
        held = self._held.pop(call_id, None)
        if held is not None:  # counted in the store first: the other gateways see it
            try:
                await shared_store.settle(self.store, held, tokens if ts is not None else 0,
                                          usd if ts is not None else 0.0)
            except Exception as exc:  # noqa: BLE001 - the turn is done; its reservation expires in the store
                log.error("event=budget_not_settled tokens=%d error=%s", tokens,
                          json.dumps(f"{type(exc).__name__}: {exc}"))
        if ts is not None and (tokens > 0 or usd > 0):
            first = self.commit(session_key, agent_id, tokens, ts, usd)
        if self._inflight.pop(call_id, None) is not None:
            self._wake_waiters()
        return first

    def in_flight(self) -> int:
        return len(self._inflight)

    async def crossed(self, session_key: str, agent_id: str) -> list[dict[str, Any]]:
        """The scopes of this call that are past ``warn_at`` of their limit for the first time this period.

        Each: ``{"scope", "unit", "used", "limit", "share", "period_start"}``. A warning sent is
        kept in the store's key-value namespace too, so a restarted gateway does not send it again.
        """
        warn_at = self.config.warn_at
        if warn_at is None:
            return []
        now = self.clock()
        periods = _periods(now)
        person = person_of_session(session_key)
        out: list[dict[str, Any]] = []
        seen: dict[str, tuple[int, int]] = {}
        if self.shared:  # every gateway's spend, not this one's alone
            notes = [key for _, key, _, _ in self._shared_counters(self.scopes_for(agent_id), session_key, person, now)]
            seen = await self.store.budget_counters(notes)
        for scope in self.scopes_for(agent_id):
            if scope.person and not person:
                continue
            key = self._key(scope, session_key, person)
            if key not in self._counters:
                continue
            counter, period = self._counter(key, now, periods)
            used = counter.usd if scope.usd else counter.used
            shared = seen.get(shared_store.counter_key(key[0], scope.usd, period, key[1], key[2])) if seen else None
            if shared is not None:
                used = shared[0] / shared_store.MICRO if scope.usd else shared[0]
            if scope.limit <= 0 or used < warn_at * scope.limit:
                continue
            mark = (scope.name, key)
            if self._warned.get(mark) == period:
                continue
            if len(self._warned) > 2 * MAX_SESSION_COUNTERS:
                self._warned.clear()
            self._warned[mark] = period
            if not await self._first_warning(scope.name, key, period):
                continue
            out.append({
                "scope": scope.name, "unit": scope.unit, "used": round(used, 6) if scope.usd else used,
                "limit": scope.limit, "share": round(used / scope.limit, 4), "period_start": period or None,
            })
        return out

    async def _first_warning(self, scope: str, key: CounterKey, period: str) -> bool:
        """Record in the store that ``scope`` warned in ``period``; ``False`` if it had already."""
        kv_get, kv_set = getattr(self.store, "kv_get", None), getattr(self.store, "kv_set", None)
        if kv_get is None or kv_set is None:
            return True
        name = f"warned:{scope}:{key[2]}"
        try:
            if await asyncio.to_thread(kv_get, KV_NAMESPACE, name) == (period or "life"):
                return False
            await asyncio.to_thread(kv_set, KV_NAMESPACE, name, period or "life")
        except Exception as exc:  # noqa: BLE001 - a warning is worth more than its bookkeeping
            log.warning("event=budget_warning_not_stored error=%s", f"{type(exc).__name__}: {exc}")
        return True

    # ------------------------------------------------------------ reporting

    async def report_people(self) -> list[dict[str, Any]]:
        """Every person's scopes (``person:daily`` …) for each person with usage on record, by person.

        Each entry is :meth:`report`'s with ``"person"`` added (``channel:account`` as in session keys).
        """
        scopes = [s for s in self.scopes if s.person and s.kind != "session"]
        if not scopes:
            return []
        rows = await self.store.usage_report("session")
        people = sorted({p for p in (person_of_session(r["group"]) for r in rows) if p})
        now = self.clock()
        out: list[dict[str, Any]] = []
        shared_keys: list[tuple[dict[str, Any], str, bool]] = []
        for person in people:
            for scope in scopes:
                key = self._key(scope, "", person)
                await self._ensure(key, now)
                counter, start = self._counter(key, now)
                entry = {"scope": scope.name, "person": person,
                         "used": round(counter.usd, 6) if scope.usd else counter.used,
                         "limit": scope.limit, "period_start": start}
                if scope.usd:
                    entry["unit"] = "usd"
                out.append(entry)
                self._note_shared(shared_keys, entry, scope, key, start)
        await self._shared_figures(shared_keys)
        return out

    def _note_shared(
        self, notes: list[tuple[dict[str, Any], str, bool]], entry: dict[str, Any], scope: Scope,
        key: CounterKey, period: str | None,
    ) -> None:
        if self.shared:
            notes.append((entry, shared_store.counter_key(key[0], scope.usd, period or "", key[1], key[2]), scope.usd))

    async def _shared_figures(self, notes: list[tuple[dict[str, Any], str, bool]]) -> None:
        """On a shared store, report what every gateway spent (the store's counters) where it has one."""
        if not notes:
            return
        seen = await self.store.budget_counters(sorted({key for _, key, _ in notes}))
        for entry, key, usd in notes:
            if key in seen:
                used = seen[key][0]
                entry["used"] = round(used / shared_store.MICRO, 6) if usd else used

    async def report(self, session_key: str | None = None) -> list[dict[str, Any]]:
        """``budget.status``: one entry per configured limit; session and person scopes only for ``session_key``.

        Each: ``{"scope", "used", "limit", "period_start"}`` (SPEC §4), plus ``"unit": "usd"`` for a
        dollar scope (``used`` and ``limit`` in USD; a token scope's entry is unchanged).
        """
        now = self.clock()
        out: list[dict[str, Any]] = []
        shared_keys: list[tuple[dict[str, Any], str, bool]] = []
        session_agent = agent_of_session(session_key) if session_key is not None else None
        person = person_of_session(session_key) if session_key is not None else ""
        for scope in self.scopes:
            if scope.kind == "session" or scope.person:
                if session_key is None or (scope.agent is not None and scope.agent != session_agent):
                    continue
                if scope.person and not person:
                    continue
            key = self._key(scope, session_key or "", person)
            await self._ensure(key, now)
            counter, start = self._counter(key, now)
            period = start
            if scope.kind == "session":
                start = await self._session_start(session_key) if counter.used else None  # type: ignore[arg-type]
            used: float = round(counter.usd, 6) if scope.usd else counter.used
            entry = {"scope": scope.name, "used": used, "limit": scope.limit, "period_start": start}
            if scope.usd:
                entry["unit"] = "usd"
            out.append(entry)
            self._note_shared(shared_keys, entry, scope, key, period)
        await self._shared_figures(shared_keys)
        return out

    async def _session_start(self, session_key: str) -> str | None:
        counter = self._counters.get(("session", "session", session_key))
        if counter is not None and counter.first_ts is not None:
            return counter.first_ts
        start: str | None = None
        kv_get = getattr(self.store, "kv_get", None)
        if kv_get is not None:
            start = await asyncio.to_thread(kv_get, KV_NAMESPACE, f"session_start:{session_key}")
        if start is None:  # recorded before the start was kept: the first day is what we know
            rows = await self.store.usage_report("day", session_key)
            start = f"{rows[0]['group']}T00:00:00Z" if rows else None
        if counter is not None:
            counter.first_ts = start
        return start

    async def remember_session_start(self, session_key: str, ts: str) -> None:
        """Keep a session's first usage in the store (``budget.status`` after a restart)."""
        kv_set = getattr(self.store, "kv_set", None)
        if kv_set is not None:
            await asyncio.to_thread(kv_set, KV_NAMESPACE, f"session_start:{session_key}", ts)
