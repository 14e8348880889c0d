"""Usage records (budgets sum them), plugin key-value namespaces, and the webhook inbox."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from exoclaw_hooks import INBOX_STATES, InboxItem, IncomingMessage, UsageRecord, normalize_ts

from .connection import PostgresBase, dumps, loads

_GROUPS = {
    "day": "substr(ts, 1, 10)",
    "model": "provider || ':' || model",
    "agent": "agent_id",
    "session": "session_key",
}
_MESSAGE_FIELDS = tuple(f.name for f in dataclasses.fields(IncomingMessage))


def _decode_message(payload: str) -> IncomingMessage:
    data = loads(payload)
    return IncomingMessage(**{k: v for k, v in data.items() if k in _MESSAGE_FIELDS})


class UsageMixin(PostgresBase):
    async def record_usage(self, record: UsageRecord) -> None:
        row = (normalize_ts(record.timestamp), record.session_key, record.agent_id, record.provider, record.model,
               int(record.input_tokens), int(record.output_tokens), int(record.cache_read_tokens),
               int(record.cache_write_tokens), float(record.cost_usd), bool(record.priced), bool(record.estimated))

        async def write(conn: Any) -> None:
            await conn.execute(
                """INSERT INTO usage(ts, session_key, agent_id, provider, model, input_tokens, output_tokens,
                                     cache_read_tokens, cache_write_tokens, cost_usd, priced, estimated)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""", row)

        await self._run(write)

    async def sum_tokens(self, since: str, *, session_key: str | None = None, agent_id: str | None = None) -> int:
        """Input + output tokens recorded at or after ``since`` (every gateway's: the shared figure budgets use)."""
        return (await self.sum_usage(since, session_key=session_key, agent_id=agent_id))[0]

    async def sum_usage(
        self, since: str, *, session_key: str | None = None, agent_id: str | None = None, person: str | None = None
    ) -> tuple[int, float]:
        """``(input + output tokens, USD)`` recorded at or after ``since`` (every gateway's), optionally of
        one session, one agent and/or one person (``channel:account``, as escaped in session keys)."""
        start = normalize_ts(since) if since else ""

        async def read(conn: Any) -> tuple[int, float]:
            where, params = "ts >= %s", [start]
            if session_key is not None:
                where += " AND session_key = %s"
                params.append(session_key)
            if agent_id is not None:
                where += " AND agent_id = %s"
                params.append(agent_id)
            if person is not None:  # what follows the key's first ":" starts with "<person>:" (the usage_person index)
                where += " AND substr(session_key, strpos(session_key, ':') + 1) LIKE %s"
                params.append(person.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + ":%")
            cur = await conn.execute(
                f"""SELECT COALESCE(SUM(input_tokens + output_tokens), 0)::bigint, COALESCE(SUM(cost_usd), 0.0)
                    FROM usage WHERE {where}""", params)
            tokens, usd = await cur.fetchone()
            return int(tokens), float(usd)

        return await self._run(read)

    async def usage_report(self, by: str, session_key: str | None = None) -> list[dict[str, Any]]:
        if by not in _GROUPS:
            raise ValueError(f"usage report by must be one of {', '.join(_GROUPS)} (got {by!r})")

        async def read(conn: Any) -> list[dict[str, Any]]:
            where = "WHERE session_key = %s" if session_key is not None else ""
            cur = await conn.execute(
                f"""SELECT {_GROUPS[by]} AS g, COUNT(*), COALESCE(SUM(input_tokens), 0)::bigint,
                           COALESCE(SUM(output_tokens), 0)::bigint, COALESCE(SUM(cost_usd), 0.0),
                           COUNT(*) FILTER (WHERE NOT priced), COUNT(*) FILTER (WHERE estimated)
                    FROM usage {where} GROUP BY g ORDER BY g""", (session_key,) if session_key is not None else ())
            out = []
            for g, calls, inp, out_tokens, cost, unpriced, estimated in await cur.fetchall():
                row = {"group": g, "calls": int(calls), "input_tokens": int(inp), "output_tokens": int(out_tokens),
                       "cost_usd": float(cost)}
                if unpriced:
                    row["unpriced_calls"] = int(unpriced)
                if estimated:  # calls whose provider reported no usage: charged the gateway's estimate
                    row["estimated_calls"] = int(estimated)
                out.append(row)
            return out

        return await self._run(read)


class KVMixin(PostgresBase):
    """Blocking on purpose (WASM host functions call them from worker threads): the blocking pool."""

    def kv_get(self, namespace: str, key: str) -> str | None:
        def read(conn: Any) -> str | None:
            row = conn.execute("SELECT value FROM kv WHERE namespace = %s AND key = %s", (namespace, key)).fetchone()
            return None if row is None else row[0]

        return self._call(read)

    def kv_set(self, namespace: str, key: str, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"kv values are strings, not {type(value).__name__}")
        now = self._now()
        self._call(lambda conn: conn.execute(
            """INSERT INTO kv(namespace, key, value, updated_at) VALUES (%s, %s, %s, %s)
               ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at""",
            (namespace, key, value, now)))

    def kv_delete(self, namespace: str, key: str) -> None:
        self._call(lambda conn: conn.execute("DELETE FROM kv WHERE namespace = %s AND key = %s", (namespace, key)))


class InboxMixin(PostgresBase):
    """The webhook inbox (SPEC §7), shared by every gateway on the database."""

    async def inbox_add(self, channel: str, message_id: str | None, message: IncomingMessage) -> tuple[int, bool]:
        payload = dumps({f: getattr(message, f) for f in _MESSAGE_FIELDS})
        now = self._now()

        async def write(conn: Any) -> tuple[int, bool]:
            cur = await conn.execute(
                """INSERT INTO inbox(channel, message_id, payload, state, received_at, updated_at)
                   VALUES (%s, %s, %s, 'pending', %s, %s)
                   ON CONFLICT (channel, message_id) DO NOTHING RETURNING id""",
                (channel, message_id, payload, now, now))
            row = await cur.fetchone()
            if row is not None:
                return int(row[0]), True
            cur = await conn.execute("SELECT id FROM inbox WHERE channel = %s AND message_id = %s",
                                     (channel, message_id))
            return int((await cur.fetchone())[0]), False

        return await self._run(write)

    async def inbox_pending(self) -> list[InboxItem]:
        async def read(conn: Any) -> list[InboxItem]:
            cur = await conn.execute(
                """SELECT id, channel, message_id, payload, state, attempts, received_at, reply
                   FROM inbox WHERE state = 'pending' ORDER BY id""")
            return [_item(row) for row in await cur.fetchall()]

        return await self._run(read)

    async def inbox_mark(
        self, id: int, state: str, *, reply_status: int | None = None, error: str | None = None  # noqa: A002
    ) -> bool:
        if state not in INBOX_STATES:
            raise ValueError(f"inbox state must be one of {', '.join(INBOX_STATES)} (got {state!r})")
        counts = state in ("replied", "failed") or (state == "pending" and error is not None)
        now = self._now()

        async def write(conn: Any) -> bool:
            cur = await conn.execute(
                """UPDATE inbox SET state = %s, updated_at = %s, attempts = attempts + %s,
                       reply_status = COALESCE(%s, reply_status), error = COALESCE(%s, error)
                   WHERE id = %s AND state <> 'replied'""",
                (state, now, 1 if counts else 0, reply_status, error, int(id)))
            return cur.rowcount == 1

        return await self._run(write)

    async def inbox_answer(self, id: int, reply: str) -> bool:  # noqa: A002
        now = self._now()

        async def write(conn: Any) -> bool:
            cur = await conn.execute(
                "UPDATE inbox SET reply = %s, updated_at = %s WHERE id = %s AND state = 'pending'",
                (reply, now, int(id)))
            return cur.rowcount == 1

        return await self._run(write)

    async def inbox_claim(
        self, owner: str, lease_s: float, *, ids: Sequence[int] | None = None, limit: int = 100,
    ) -> list[InboxItem]:
        """Take the pending items nobody holds; rows another gateway is claiming right now are skipped."""
        if ids is not None and not ids:
            return []

        async def write(conn: Any) -> list[InboxItem]:
            only = "AND id = ANY(%(ids)s)" if ids is not None else ""
            cur = await conn.execute(
                f"""UPDATE inbox SET claimed_by = %(owner)s,
                                     claimed_until = now() + make_interval(secs => %(lease)s)
                    WHERE id IN (SELECT id FROM inbox
                                 WHERE state = 'pending' AND (claimed_until IS NULL OR claimed_until <= now()) {only}
                                 ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
                    RETURNING id, channel, message_id, payload, state, attempts, received_at, reply""",
                {"owner": owner, "lease": float(lease_s), "ids": [int(i) for i in ids or ()], "limit": int(limit)})
            return sorted((_item(row) for row in await cur.fetchall()), key=lambda item: item.id)

        return await self._run(write)

    async def inbox_renew(self, owner: str, ids: Sequence[int], lease_s: float) -> int:
        if not ids:
            return 0

        async def write(conn: Any) -> int:
            cur = await conn.execute(
                """UPDATE inbox SET claimed_until = now() + make_interval(secs => %s)
                   WHERE id = ANY(%s) AND claimed_by = %s AND state = 'pending'""",
                (float(lease_s), [int(i) for i in ids], owner))
            return cur.rowcount

        return await self._run(write)

    async def inbox_counts(self) -> dict[str, int]:
        async def read(conn: Any) -> dict[str, int]:
            counts = dict.fromkeys(INBOX_STATES, 0)
            cur = await conn.execute("SELECT state, COUNT(*) FROM inbox GROUP BY state")
            counts.update({state: int(n) for state, n in await cur.fetchall()})
            return counts

        return await self._run(read)


def _item(row: tuple[Any, ...]) -> InboxItem:
    return InboxItem(id=int(row[0]), channel=row[1], message_id=row[2] or "", message=_decode_message(row[3]),
                     state=row[4], attempts=int(row[5]), received_at=row[6], reply=row[7])
