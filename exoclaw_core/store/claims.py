"""Claims on pending inbox items (``Store.inbox_claim`` / ``inbox_renew``), for the SQLite store.

One gateway owns a SQLite data directory (``dirlock``), so nobody else can
hold an item: the claims live in this process's memory, on the store's
thread, and a restart starts with none (every pending item is claimable, as
the inbox resumes them). A store shared by several gateways keeps claims in
the database instead (the PostgreSQL store).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

from exoclaw_hooks import InboxItem

from ._base import StoreBase
from .inbox import _inbox_pending


class ClaimsMixin(StoreBase):
    _claims: dict[int, tuple[str, float]]

    def _claim_table(self) -> dict[int, tuple[str, float]]:
        table = self.__dict__.get("_claims")
        if table is None:
            table = self.__dict__["_claims"] = {}
        return table

    async def inbox_claim(
        self, owner: str, lease_s: float, *, ids: Sequence[int] | None = None, limit: int = 100,
    ) -> list[InboxItem]:
        """Pending items nobody holds, now ``owner``'s for ``lease_s`` seconds, oldest first (``ids``: only those)."""
        wanted = None if ids is None else {int(i) for i in ids}
        return await self._run(self._claim, owner, float(lease_s), wanted, int(limit))

    def _claim(
        self, conn: sqlite3.Connection, owner: str, lease_s: float, wanted: set[int] | None, limit: int
    ) -> list[InboxItem]:
        now, table = time.monotonic(), self._claim_table()
        pending = _inbox_pending(conn)
        still = {item.id for item in pending}
        for key in [k for k in table if k not in still]:  # answered since: forget the claim
            del table[key]
        taken = []
        for item in pending:
            if len(taken) >= limit:
                break
            if wanted is not None and item.id not in wanted:
                continue
            held = table.get(item.id)
            if held is not None and held[1] > now:
                continue
            table[item.id] = (owner, now + lease_s)
            taken.append(item)
        return taken

    async def inbox_renew(self, owner: str, ids: Sequence[int], lease_s: float) -> int:
        """Extend ``owner``'s leases on those items (the ones still its own)."""
        return await self._run(self._renew, owner, [int(i) for i in ids], float(lease_s))

    def _renew(self, conn: sqlite3.Connection, owner: str, ids: list[int], lease_s: float) -> int:
        if not ids:
            return 0
        table, until = self._claim_table(), time.monotonic() + lease_s
        pending = {row[0] for row in conn.execute(
            f"SELECT id FROM inbox WHERE state = 'pending' AND id IN ({','.join('?' * len(ids))})", ids)}
        renewed = 0
        for item_id in ids:
            held = table.get(item_id)
            if item_id in pending and held is not None and held[0] == owner:
                table[item_id] = (owner, until)
                renewed += 1
        return renewed
