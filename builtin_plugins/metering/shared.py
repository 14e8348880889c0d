"""Budgets counted in the store's shared counters, for a store several gateways use at once.

With one gateway (SQLite) the :class:`~.budgets.BudgetBook` keeps its counters
and reservations in memory: that is exact and fast. With several gateways on
one database each process would see only its own reservations, and together
they overspend (issue 19: 2.15× a daily cap). On a store whose ``describe()``
says ``"shared": True`` every admission is instead a ``Store.budget_reserve``:
one atomic check-and-reserve of the call's worst case over all its token scopes
(and one over its dollar scopes, counted in integer micro-dollars: a
reservation has one amount, in one unit), settled with what was spent by
``budget_settle`` — also when the call failed or was cut; a reservation of a
gateway that died expires after ``hold_s``.

Counter keys name the scope's unit, period and owner:
``daily:2026-12-04:agent:work``, ``monthly_usd:2026-12::``, ``session::session:<key>``,
``daily:2026-12-04:person:tg:alice``. A counter seen first is seeded with what
the usage records say was spent in its period (the book's ``sum_usage``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

MICRO = 1_000_000


@dataclass(frozen=True, slots=True)
class Held:
    """A call's reservations in the store: the token scopes' and the dollar scopes'."""

    tokens_id: int | None
    tokens_keys: tuple[str, ...]
    usd_id: int | None
    usd_keys: tuple[str, ...]


def counter_key(kind: str, usd: bool, period: str, who: str, ident: str) -> str:
    """The store's counter key of one scope's counter in one period (``period``: ISO start or "")."""
    if kind == "daily":
        period = period[:10]
    elif kind == "monthly":
        period = period[:7]
    return f"{kind}{'_usd' if usd else ''}:{period}:{who}:{ident}"


def micro(usd: float) -> int:
    """Dollars as integer micro-dollars, rounded up (a worst case never under-counts)."""
    return max(0, math.ceil(usd * MICRO - 1e-6))


async def reserve(
    store: Any, owner: str, hold_s: float,
    tokens: dict[str, tuple[int, int]], tokens_amount: int,
    usd: dict[str, tuple[int, int]], usd_amount: int,
) -> Held | None:
    """Reserve ``tokens_amount`` on every token counter and ``usd_amount`` on every dollar one
    (``{key: (limit, seed)}``), or nothing: ``None`` when a counter has not that much left."""
    tid = uid = None
    if tokens:
        tid, _ = await store.budget_reserve(
            owner, {k: v[0] for k, v in tokens.items()}, tokens_amount, hold_s=hold_s,
            seed={k: v[1] for k, v in tokens.items()})
        if tid is None:
            return None
    if usd:
        uid, _ = await store.budget_reserve(
            owner, {k: v[0] for k, v in usd.items()}, usd_amount, hold_s=hold_s,
            seed={k: v[1] for k, v in usd.items()})
        if uid is None:
            if tid is not None:
                await store.budget_settle(tid, (), 0)
            return None
    return Held(tid, tuple(tokens), uid, tuple(usd))


async def settle(store: Any, held: Held, tokens: int, usd: float) -> None:
    """Release ``held`` and count what the call spent (0 for a call that used nothing)."""
    if held.tokens_keys:
        await store.budget_settle(held.tokens_id, held.tokens_keys, max(0, int(tokens)))
    if held.usd_keys:
        await store.budget_settle(held.usd_id, held.usd_keys, micro(usd))
