"""Budget counters with reservations (``Store.budget_reserve`` / ``budget_settle`` / ``budget_counters``).

A counter (``budget_counters``: key → used tokens) and the reservations in
flight on it (``budget_reservations`` and their keys) are checked and
changed in one write transaction, so a reservation either fits every limit
it names or changes nothing. SQLite serialises writers; the PostgreSQL store
does the same with row locks, which is what makes budgets exact across
gateways there. Reservations carry an expiry: a gateway that died before
settling one does not hold its tokens for ever.
"""

from __future__ import annotations

import datetime as _dt
import sqlite3
from collections.abc import Mapping, Sequence

from exoclaw_hooks import iso_utc

from ._base import StoreBase


class BudgetsMixin(StoreBase):
    async def budget_reserve(
        self, owner: str, limits: Mapping[str, int], amount: int, *, hold_s: float,
        seed: Mapping[str, int] | None = None,
    ) -> tuple[int | None, dict[str, tuple[int, int]]]:
        now = self._clock()
        return await self._run(
            _reserve, owner, {str(k): int(v) for k, v in limits.items()}, int(amount), iso_utc(now),
            iso_utc(now + _dt.timedelta(seconds=float(hold_s))), dict(seed or {}))

    async def budget_settle(self, reservation: int | None, keys: Sequence[str], tokens: int) -> None:
        await self._run(_settle, reservation, [str(k) for k in keys], int(tokens))

    async def budget_counters(self, keys: Sequence[str]) -> dict[str, tuple[int, int]]:
        return await self._run(_counters, [str(k) for k in keys], self._now())


def _counters(conn: sqlite3.Connection, keys: list[str], now: str) -> dict[str, tuple[int, int]]:
    if not keys:
        return {}
    marks = ",".join("?" * len(keys))
    used = dict(conn.execute(f"SELECT key, used FROM budget_counters WHERE key IN ({marks})", keys))
    reserved = dict(conn.execute(
        f"""SELECT k.key, SUM(r.amount) FROM budget_reservation_keys AS k
            JOIN budget_reservations AS r ON r.id = k.reservation_id
            WHERE k.key IN ({marks}) AND r.expires_at > ? GROUP BY k.key""", [*keys, now]))
    return {k: (int(used[k]), int(reserved.get(k) or 0)) for k in keys if k in used}


def _reserve(
    conn: sqlite3.Connection, owner: str, limits: dict[str, int], amount: int, now: str, expires: str,
    seed: dict[str, int],
) -> tuple[int | None, dict[str, tuple[int, int]]]:
    def write(conn: sqlite3.Connection) -> tuple[int | None, dict[str, tuple[int, int]]]:
        conn.executemany("INSERT INTO budget_counters(key, used) VALUES (?, ?) ON CONFLICT(key) DO NOTHING",
                         [(k, int(seed.get(k, 0))) for k in limits])
        seen = _counters(conn, list(limits), now)
        if any(used + reserved + amount > limits[k] for k, (used, reserved) in seen.items()):
            return None, seen
        rid = conn.execute("INSERT INTO budget_reservations(owner, amount, expires_at) VALUES (?, ?, ?)",
                           (owner, amount, expires)).lastrowid
        conn.executemany("INSERT INTO budget_reservation_keys(reservation_id, key) VALUES (?, ?)",
                         [(rid, k) for k in limits])
        # settled or long expired reservations are forgotten as new ones come
        conn.execute("DELETE FROM budget_reservations WHERE expires_at < ?", (now,))
        return int(rid), seen  # type: ignore[arg-type]

    return StoreBase._tx(conn, write)


def _settle(conn: sqlite3.Connection, reservation: int | None, keys: list[str], tokens: int) -> None:
    def write(conn: sqlite3.Connection) -> None:
        if reservation is not None:
            conn.execute("DELETE FROM budget_reservations WHERE id = ?", (reservation,))
        conn.executemany(
            """INSERT INTO budget_counters(key, used) VALUES (?, ?)
               ON CONFLICT(key) DO UPDATE SET used = used + excluded.used""", [(k, tokens) for k in keys])

    StoreBase._tx(conn, write)
