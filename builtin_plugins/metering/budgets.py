"""Token budgets: counters per scope, reservations for calls in flight (SPEC §8).

Scopes, in the order they are checked and named in a refusal::

    session, daily, monthly, agent:<id>:session, agent:<id>:daily, agent:<id>:monthly

A budget counts tokens = input + output (cache reads and writes are priced,
not budgeted). ``session`` is a session's whole life, ``daily`` the UTC day,
``monthly`` the UTC calendar month; the agent scopes count only that agent's
calls. The clock is the gateway's (``host.now()``), injectable in tests.

**Counters** (what was committed) live in memory and come from the store:
a counter is initialised once with ``store.sum_tokens(period_start, ...)``
(daily and monthly ones at start-up, a session's on its first use), and from
then on every usage record of this gateway is added to it after it was
stored. A day or month rolls over without reading the store again: the
counter of the new period starts at 0 and each record counts in the period
of its own timestamp (a call that started before midnight and ended after it
counts in the new day, as its record does).

**Reservations** keep concurrent turns from overspending. An admitted call
holds ``input estimate + max_tokens`` (its worst case) until it is settled
in ``after_llm_call`` — committed if it used tokens, released either way. A
new call with input estimate ``e`` is checked, for every scope, against the
committed tokens ``used`` and the reservations ``others`` of the other calls
in flight in that scope:

* ``used + others.input + e > limit`` → refused (the first such scope is
  named; ``<used>`` in the text is ``used``, what was spent before this
  call). With nothing in flight this is exactly "used + estimate > limit".
* else ``used + others.worst_case + e > limit`` → the call *waits* (at most
  ``wait_timeout_s``) for calls in flight to settle, then is checked again —
  it may fit once their real output is known. Past the timeout it is
  refused. A waiter takes the current *wake-up* future in the same step as
  its check (no ``await`` between them), and every release of a reservation
  resolves that future and starts a new one: a settle can never fall between
  a waiter's check and its wait and go unheard (with an
  ``asyncio.Condition`` it could: a waiter re-queueing for the condition's
  lock while others were being woken missed the next settle and slept for
  the whole ``wait_timeout_s``).
* else admitted: its reservation joins the others.

A call's own output is never reserved against itself (so a session of 2,000
tokens with ``max_tokens = 4096`` still works): with estimates right, the
only tokens no check accounted for are the output of the last call admitted,
so concurrent turns overspend by at most one call's output.

A reservation that is never settled (a turn cancelled at shutdown, another
plugin refusing the call after this one admitted it) must not block a budget
forever: turns of one session run one after another, so a new call of a
session drops any older reservation of that session, and reservations expire
after ``reservation_ttl_s``.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

from exoclaw_hooks import BudgetExceeded

from .settings import BudgetLimits, BudgetsConfig

log = logging.getLogger("exoclaw.metering")

KINDS = ("session", "daily", "monthly")
KV_NAMESPACE = "metering"
#: session counters kept in memory before the idle ones are dropped (re-read from the store on use)
MAX_SESSION_COUNTERS = 50_000

CounterKey = tuple[str, str | None]  # ("session", session key) | ("daily"|"monthly", agent id or None)


@dataclass(frozen=True, slots=True)
class Scope:
    """One configured limit."""

    name: str  # "session", "daily", "agent:work:monthly" …
    kind: str  # "session" | "daily" | "monthly"
    limit: int
    agent: str | None = None  # None: every agent


@dataclass(slots=True)
class Counter:
    period: str  # ISO start of the period ("" for a session: its whole life)
    used: int
    first_ts: str | None = None  # sessions: the first usage (budget.status' period_start)


@dataclass(slots=True)
class Reservation:
    call_id: str
    session_key: str
    agent_id: str
    input_est: int
    max_out: int
    sample: Any  # the estimator's measure of the request, to learn from after the call
    created: float  # time.monotonic()

    @property
    def worst(self) -> int:
        return self.input_est + self.max_out


def iso_utc(moment: _dt.datetime) -> str:
    """``2026-11-25T11:38:47.123456Z`` (a naive datetime is taken as UTC)."""
    m = _utc(moment)
    return (
        f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}.{m.microsecond:06d}Z"
    )


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
    """Like :func:`period_start` for an ISO timestamp made by :func:`iso_utc`."""
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


def configured_scopes(config: BudgetsConfig) -> list[Scope]:
    """Every configured limit, in check order (agents in config order)."""
    scopes = [Scope(k, k, getattr(config, k)) for k in KINDS if getattr(config, k) is not None]
    for agent_id, limits in config.agents.items():
        scopes.extend(_agent_scopes(agent_id, limits))
    return scopes


def _agent_scopes(agent_id: str, limits: BudgetLimits) -> list[Scope]:
    return [
        Scope(f"agent:{agent_id}:{k}", k, getattr(limits, k), agent_id)
        for k in KINDS
        if getattr(limits, k) is not None
    ]


class BudgetBook:
    """The counters and reservations of one gateway.

    :param config: the ``[budgets]`` table.
    :param store: the :class:`exoclaw_hooks.Store` (``sum_tokens``, ``usage_report``, ``kv_*``).
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
    ):
        self.config = config
        self.store = store
        self.clock = clock
        self.wait_timeout_s = wait_timeout_s
        self.reservation_ttl_s = reservation_ttl_s
        self.scopes = configured_scopes(config)
        self.tracks_sessions = any(s.kind == "session" for s in self.scopes)
        self._by_agent: dict[str, list[Scope]] = {}
        self._counters: dict[CounterKey, Counter] = {}
        self._sessions: OrderedDict[str, None] = OrderedDict()  # LRU of loaded session counters
        self._loading: dict[CounterKey, asyncio.Future[None]] = {}
        self._inflight: dict[str, Reservation] = {}
        #: resolved (and replaced) whenever a reservation is released: what waiters wait on
        self._released: asyncio.Future[None] | None = None

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

    # ------------------------------------------------------------ counters

    @staticmethod
    def _key(scope: Scope, session_key: str) -> CounterKey:
        if scope.kind == "session":
            return ("session", session_key)
        return (scope.kind, scope.agent)

    async def load_periodic(self) -> None:
        """Initialise the daily and monthly counters from the store (at start-up)."""
        now = self.clock()
        keys = {self._key(s, "") for s in self.scopes if s.kind != "session"}
        await asyncio.gather(*(self._ensure(k, now) for k in keys))

    async def _ensure(self, key: CounterKey, now: _dt.datetime) -> None:
        """Make sure ``key`` has a counter (read from the store once, shared by concurrent callers)."""
        counter = self._counters.get(key)
        if counter is not None:
            if key[0] == "session":
                self._sessions.move_to_end(key[1])  # type: ignore[arg-type]
            return
        pending = self._loading.get(key)
        if pending is None:
            pending = self._loading[key] = asyncio.ensure_future(self._load(key, now))
            pending.add_done_callback(lambda _f, k=key: self._loading.pop(k, None))
        await asyncio.shield(pending)

    async def _load(self, key: CounterKey, now: _dt.datetime) -> None:
        kind, who = key
        period = period_start(kind, now)
        if kind == "session":
            used = await self.store.sum_tokens("", session_key=who)
        else:
            used = await self.store.sum_tokens(period, agent_id=who)
        # everything this gateway records from now on is added by commit()
        self._counters[key] = Counter(period, int(used))
        if kind == "session":
            self._sessions[who] = None  # type: ignore[index]
            self._evict_sessions()

    def _evict_sessions(self) -> None:
        if len(self._sessions) <= MAX_SESSION_COUNTERS:
            return
        busy = {r.session_key for r in self._inflight.values()}
        for session_key in list(self._sessions):
            if len(self._sessions) <= MAX_SESSION_COUNTERS:
                break
            if session_key not in busy:
                del self._sessions[session_key]
                self._counters.pop(("session", session_key), None)

    def _used(self, key: CounterKey, now: _dt.datetime) -> tuple[int, str]:
        """``(committed tokens, period start)`` of ``key`` at ``now`` (rolling the period over)."""
        counter = self._counters[key]
        kind = key[0]
        if kind == "session":
            return counter.used, ""
        day, month = _periods(now)
        period = day if kind == "daily" else month
        if counter.period < period:  # a new day / month: nothing spent in it yet
            counter.period, counter.used = period, 0
        return counter.used, period

    def commit(self, session_key: str, agent_id: str, tokens: int, ts: str) -> bool:
        """Add a stored record's ``tokens`` (made at ``ts``) to the loaded counters it belongs to.

        Returns ``True`` when this was the first usage of a tracked session.
        """
        first = False
        for key in (("session", session_key), ("daily", None), ("monthly", None), ("daily", agent_id),
                    ("monthly", agent_id)):
            counter = self._counters.get(key)
            if counter is None:  # not tracked, or not loaded yet: the store has the record
                continue
            kind = key[0]
            if kind == "session":
                if counter.used == 0 and counter.first_ts is None and tokens > 0:
                    counter.first_ts = ts
                    first = True
                counter.used += tokens
                continue
            period = _period_of_ts(kind, ts)
            if period == counter.period:
                counter.used += tokens
            elif period > counter.period:
                counter.period, counter.used = period, tokens
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
            r = self._inflight.pop(call_id)
            log.warning(
                "event=budget_reservation_dropped agent=%s tokens=%d reason=%s",
                r.agent_id, r.worst, "expired" if r.session_key != session_key else "superseded",
            )
        if stale:
            self._wake_waiters()

    def _check(
        self, scopes: list[Scope], session_key: str, agent_id: str, estimate: int, now: _dt.datetime
    ) -> tuple[str, Scope | None, int]:
        """``("ok"|"wait"|"refuse", scope, used)`` for a new call (see the module docstring)."""
        waiting: tuple[Scope, int] | None = None
        inflight = self._inflight.values()
        for scope in scopes:
            used, _ = self._used(self._key(scope, session_key), now)
            others_in = others_worst = 0
            if inflight:
                for r in inflight:
                    if (
                        r.session_key == session_key
                        if scope.kind == "session"
                        else scope.agent is None or r.agent_id == scope.agent
                    ):
                        others_in += r.input_est
                        others_worst += r.worst
            if used + others_in + estimate > scope.limit:
                return "refuse", scope, used
            if waiting is None and used + others_worst + estimate > scope.limit:
                waiting = (scope, used)
        if waiting is not None:
            return "wait", waiting[0], waiting[1]
        return "ok", None, 0

    async def admit(
        self, call_id: str, session_key: str, agent_id: str, estimate: int, max_out: int, sample: Any = None
    ) -> None:
        """Admit a call (holding its reservation) or raise :class:`BudgetExceeded`."""
        scopes = self.scopes_for(agent_id)
        if not scopes:
            return
        now = self.clock()
        counters = self._counters
        for scope in scopes:
            key = self._key(scope, session_key)
            if key not in counters or key[0] == "session":
                await self._ensure(key, now)
        if self._inflight:
            self._purge(session_key, time.monotonic())
        deadline: float | None = None
        while True:
            now = self.clock()
            verdict, scope, used = self._check(scopes, session_key, agent_id, estimate, now)
            if verdict == "ok":
                self._inflight[call_id] = Reservation(
                    call_id, session_key, agent_id, estimate, max(0, int(max_out)), sample, time.monotonic()
                )
                return
            assert scope is not None
            if verdict == "refuse":
                raise BudgetExceeded(scope.name, used, scope.limit)
            loop = asyncio.get_running_loop()
            if deadline is None:
                deadline = loop.time() + self.wait_timeout_s
            remaining = deadline - loop.time()
            if remaining <= 0:
                log.warning("event=budget_wait_timeout scope=%s waited_s=%.1f", scope.name, self.wait_timeout_s)
                raise BudgetExceeded(scope.name, used, scope.limit)
            # taken in the same step as the check above: a release after it resolves this future
            released = self._released
            if released is None:
                released = self._released = loop.create_future()
            try:
                await asyncio.wait_for(asyncio.shield(released), remaining)
            except asyncio.TimeoutError:
                pass

    def reservation(self, call_id: str) -> Reservation | None:
        return self._inflight.get(call_id)

    async def settle(self, call_id: str, session_key: str, agent_id: str, tokens: int, ts: str | None) -> bool:
        """Commit a finished call's ``tokens`` (``ts``: its record's time; ``None``: nothing
        recorded) and release its reservation, in one step. Returns :meth:`commit`'s answer."""
        first = False
        if ts is not None and tokens > 0:
            first = self.commit(session_key, agent_id, tokens, ts)
        if self._inflight.pop(call_id, None) is not None:
            self._wake_waiters()
        return first

    def in_flight(self) -> int:
        return len(self._inflight)

    # ------------------------------------------------------------ reporting

    async def report(self, session_key: str | None = None) -> list[dict[str, Any]]:
        """``budget.status``: one entry per configured limit; session scopes only for ``session_key``."""
        now = self.clock()
        out: list[dict[str, Any]] = []
        session_agent = agent_of_session(session_key) if session_key is not None else None
        for scope in self.scopes:
            if scope.kind == "session":
                if session_key is None or (scope.agent is not None and scope.agent != session_agent):
                    continue
                key = self._key(scope, session_key)
                await self._ensure(key, now)
                used, _ = self._used(key, now)
                start = await self._session_start(session_key) if used else None
            else:
                key = self._key(scope, "")
                await self._ensure(key, now)
                used, start = self._used(key, now)
            out.append({"scope": scope.name, "used": used, "limit": scope.limit, "period_start": start})
        return out

    async def _session_start(self, session_key: str) -> str | None:
        counter = self._counters.get(("session", session_key))
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
