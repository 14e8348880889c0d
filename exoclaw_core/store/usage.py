"""Usage records: one per LLM call (SPEC §8); budgets sum them."""

from __future__ import annotations

import sqlite3
from typing import Any

from exoclaw_hooks import UsageRecord, normalize_ts

from ._base import StoreBase

#: ``usage_report(by=...)``: the SQL expression each grouping uses.
_MIDNIGHT = "T00:00:00.000000Z"

_GROUPS = {
    "day": "substr(ts, 1, 10)",
    "model": "provider || ':' || model",
    "agent": "agent_id",
    "session": "session_key",
}


class UsageMixin(StoreBase):
    """Metering records and the sums budgets are checked against."""

    async def record_usage(self, record: UsageRecord) -> None:
        """Store one call's usage. ``record.timestamp`` is any ISO 8601 time (``Z`` or offset).

        Raises ``ValueError`` when the timestamp is not ISO 8601.
        """
        row = (
            normalize_ts(record.timestamp),
            record.session_key,
            record.agent_id,
            record.provider,
            record.model,
            int(record.input_tokens),
            int(record.output_tokens),
            int(record.cache_read_tokens),
            int(record.cache_write_tokens),
            float(record.cost_usd),
            1 if record.priced else 0,
            1 if getattr(record, "estimated", False) else 0,
        )
        await self._run(_insert_usage, row)

    async def sum_tokens(
        self, since: str, *, session_key: str | None = None, agent_id: str | None = None
    ) -> int:
        """Input + output tokens of the records with ``timestamp >= since``, optionally
        of one session and/or one agent.

        ``since`` is an ISO 8601 date or time (``"2026-11-01"`` = that UTC
        midnight); ``""`` means from the beginning. Reads only a covering
        index, so a budget check stays fast as records pile up.
        """
        start = normalize_ts(since) if since else ""
        return await self._run(_sum_tokens, start, session_key, agent_id)

    async def sum_usage(
        self, since: str, *, session_key: str | None = None, agent_id: str | None = None, person: str | None = None
    ) -> tuple[int, float]:
        """``(input + output tokens, USD)`` of the records with ``timestamp >= since``, optionally
        of one session, one agent and/or one person (``channel:account``, the middle of a session
        key as escaped in it). Dollar budgets and every person's budgets are counted from this."""
        start = normalize_ts(since) if since else ""
        return await self._run(_sum_usage, start, session_key, agent_id, person)

    async def usage_report(self, by: str, session_key: str | None = None) -> list[dict[str, Any]]:
        """Totals grouped ``by`` ``"day"`` (UTC ``YYYY-MM-DD``), ``"model"``
        (``provider:model``), ``"agent"`` or ``"session"``, sorted by group.

        Each row: ``{"group", "calls", "input_tokens", "output_tokens",
        "cost_usd"}`` (unrounded cost), plus ``"unpriced_calls"`` when some of
        the group's calls had no price. ``session_key`` keeps one session.
        Raises ``ValueError`` for another ``by``.
        """
        if by not in _GROUPS:
            raise ValueError(f"usage report by must be one of {', '.join(_GROUPS)} (got {by!r})")
        return await self._run(_usage_report, _GROUPS[by], session_key)


def _insert_usage(conn: sqlite3.Connection, row: tuple[Any, ...]) -> None:
    # One statement in autocommit mode is its own (durable) transaction.
    conn.execute(
        """INSERT INTO usage(ts, session_key, agent_id, provider, model, input_tokens, output_tokens,
                             cache_read_tokens, cache_write_tokens, cost_usd, priced, estimated)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        row,
    )


def _sum_tokens(conn: sqlite3.Connection, since: str, session_key: str | None, agent_id: str | None) -> int:
    # Whole days come from the daily rollups; only a partial first day
    # (``since`` not at midnight) is summed from the records themselves.
    filters, params = "", []
    if session_key is not None:
        filters += " AND session_key = ?"
        params.append(session_key)
    if agent_id is not None:
        filters += " AND agent_id = ?"
        params.append(agent_id)
    rollup = "usage_session_daily" if session_key is not None else "usage_daily"
    day = since[:10]
    partial = bool(since) and since != f"{day}{_MIDNIGHT}"
    if not since:
        days = ""
    else:
        days = " AND day > ?" if partial else " AND day >= ?"
        params.insert(0, day)
    total = conn.execute(f"SELECT COALESCE(SUM(tokens), 0) FROM {rollup} WHERE 1{days}{filters}", params).fetchone()[0]
    if partial:
        # Every ts of that day starts with "<day>T", and "U" sorts after "T".
        total += conn.execute(
            "SELECT COALESCE(SUM(input_tokens + output_tokens), 0) FROM usage WHERE ts >= ? AND ts < ?" + filters,
            [since, f"{day}U", *params[1:]],
        ).fetchone()[0]
    return int(total)


def _sum_usage(
    conn: sqlite3.Connection, since: str, session_key: str | None, agent_id: str | None, person: str | None
) -> tuple[int, float]:
    filters, params = "ts >= ?", [since]
    if session_key is not None:
        filters += " AND session_key = ?"
        params.append(session_key)
    if agent_id is not None:
        filters += " AND agent_id = ?"
        params.append(agent_id)
    if person is not None:
        # the key's parts are escaped (no ":" inside one): what follows its first ":" starts with
        # "<person>:", i.e. sorts from "<person>:" to before "<person>;" (";" follows ":") — a range
        # of the usage_person index
        filters += (" AND substr(session_key, instr(session_key, ':') + 1) >= ?"
                    " AND substr(session_key, instr(session_key, ':') + 1) < ?")
        params.extend([f"{person}:", f"{person};"])
    tokens, usd = conn.execute(
        f"SELECT COALESCE(SUM(input_tokens + output_tokens), 0), COALESCE(SUM(cost_usd), 0.0) FROM usage WHERE {filters}",
        params,
    ).fetchone()
    return int(tokens), float(usd)


def _usage_report(conn: sqlite3.Connection, group: str, session_key: str | None) -> list[dict[str, Any]]:
    where = "WHERE session_key = ?" if session_key is not None else ""
    params = (session_key,) if session_key is not None else ()
    rows = conn.execute(
        f"""SELECT {group} AS g, COUNT(*), COALESCE(SUM(input_tokens), 0),
                   COALESCE(SUM(output_tokens), 0), COALESCE(SUM(cost_usd), 0.0), COALESCE(SUM(1 - priced), 0),
                   COALESCE(SUM(estimated), 0)
            FROM usage {where} GROUP BY g ORDER BY g""",
        params,
    )
    out_rows = []
    for g, calls, inp, out, cost, unpriced, estimated in rows:
        row = {"group": g, "calls": calls, "input_tokens": inp, "output_tokens": out, "cost_usd": float(cost)}
        if unpriced:  # calls of a model without a price: their cost is unknown, not zero
            row["unpriced_calls"] = unpriced
        if estimated:  # calls whose provider reported no usage: charged the gateway's estimate
            row["estimated_calls"] = estimated
        out_rows.append(row)
    return out_rows
