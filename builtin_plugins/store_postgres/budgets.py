"""Budget counters with reservations, exact across gateways (``Store.budget_reserve`` and its kin).

A reservation is checked and made in one transaction that first locks the
rows of every counter it names (in key order: two transactions never wait
for each other in a circle). A call on another gateway in the same scope
waits for that lock, then sees the reservation: the sum a check uses cannot
change under it. Expiry is on the database's clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .connection import PostgresBase


async def _counters(conn: Any, keys: list[str]) -> dict[str, tuple[int, int]]:
    cur = await conn.execute(
        """SELECT c.key, c.used,
                  COALESCE((SELECT SUM(r.amount) FROM budget_reservation_keys AS k
                            JOIN budget_reservations AS r ON r.id = k.reservation_id
                            WHERE k.key = c.key AND r.expires_at > now()), 0)
           FROM budget_counters AS c WHERE c.key = ANY(%s)""", (keys,))
    return {key: (int(used), int(reserved)) for key, used, reserved in await cur.fetchall()}


class BudgetsMixin(PostgresBase):
    async def budget_reserve(
        self, owner: str, limits: Mapping[str, int], amount: int, *, hold_s: float,
        seed: Mapping[str, int] | None = None,
    ) -> tuple[int | None, dict[str, tuple[int, int]]]:
        keys = sorted(str(k) for k in limits)
        wanted = {str(k): int(v) for k, v in limits.items()}
        seeds = dict(seed or {})

        async def write(conn: Any) -> tuple[int | None, dict[str, tuple[int, int]]]:
            async with conn.cursor() as cur:
                await cur.executemany(
                    "INSERT INTO budget_counters(key, used) VALUES (%s, %s) ON CONFLICT (key) DO NOTHING",
                    [(k, int(seeds.get(k, 0))) for k in keys])
            await conn.execute("SELECT key FROM budget_counters WHERE key = ANY(%s) ORDER BY key FOR UPDATE", (keys,))
            seen = await _counters(conn, keys)
            if any(used + reserved + int(amount) > wanted[k] for k, (used, reserved) in seen.items()):
                return None, seen
            cur = await conn.execute(
                """INSERT INTO budget_reservations(owner, amount, expires_at)
                   VALUES (%s, %s, now() + make_interval(secs => %s)) RETURNING id""",
                (owner, int(amount), float(hold_s)))
            rid = int((await cur.fetchone())[0])
            async with conn.cursor() as cur:
                await cur.executemany("INSERT INTO budget_reservation_keys(reservation_id, key) VALUES (%s, %s)",
                                      [(rid, k) for k in keys])
            await conn.execute(  # long expired ones are forgotten (rows being settled right now are skipped)
                """DELETE FROM budget_reservations WHERE id IN (
                       SELECT id FROM budget_reservations WHERE expires_at < now() - interval '1 hour'
                       FOR UPDATE SKIP LOCKED)""")
            return rid, seen

        return await self._run(write, tx=True)

    async def budget_settle(self, reservation: int | None, keys: Sequence[str], tokens: int) -> None:
        async def write(conn: Any) -> None:
            if reservation is not None:
                await conn.execute("DELETE FROM budget_reservations WHERE id = %s", (int(reservation),))
            async with conn.cursor() as cur:
                await cur.executemany(
                    """INSERT INTO budget_counters(key, used) VALUES (%s, %s)
                       ON CONFLICT (key) DO UPDATE SET used = budget_counters.used + excluded.used""",
                    [(str(k), int(tokens)) for k in sorted(keys)])

        await self._run(write, tx=True)

    async def budget_counters(self, keys: Sequence[str]) -> dict[str, tuple[int, int]]:
        async def read(conn: Any) -> dict[str, tuple[int, int]]:
            return await _counters(conn, [str(k) for k in keys])

        return await self._run(read)
