"""The webhook inbox (SPEC §7): a message is stored before the webhook is answered.

Life of an item::

    inbox_add ──► pending ──(reply sent)──────────► replied   (final, durable)
                     │ ▲
                     │ └─(attempt failed, will retry: mark 'pending' with error)
                     ├──(gave up)─────────────────► failed
                     └──(nothing to answer)────────► ignored

``attempts`` counts the delivery attempts whose outcome was recorded: a mark
to ``replied`` or ``failed``, or back to ``pending`` with an ``error``.
``replied`` is final: once a reply is recorded as sent, no later mark
changes the item, and it is never listed as pending again, so it is never
sent twice. Marking ``replied`` fsyncs before returning.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from typing import Any

from exoclaw_hooks import InboxItem, IncomingMessage

from ._base import StoreBase, dumps, loads

INBOX_STATES = ("pending", "replied", "failed", "ignored")

_MESSAGE_FIELDS = tuple(f.name for f in dataclasses.fields(IncomingMessage))


def _encode_message(message: IncomingMessage) -> str:
    return dumps({f: getattr(message, f) for f in _MESSAGE_FIELDS})


def _decode_message(payload: str) -> IncomingMessage:
    data = loads(payload)
    # Tolerate payloads written by another version of IncomingMessage.
    return IncomingMessage(**{k: v for k, v in data.items() if k in _MESSAGE_FIELDS})


class InboxMixin(StoreBase):
    """Core-only (not in the ``Store`` protocol): what the webhook endpoint needs."""

    async def inbox_add(self, channel: str, message_id: str | None, message: IncomingMessage) -> tuple[int, bool]:
        """Store an incoming webhook message as ``pending``; returns ``(id, is_new)``.

        A message already received on this channel with the same platform
        ``message_id`` (a platform's retry) is not stored again: its id comes
        back with ``is_new`` ``False``. ``message_id`` ``None`` means the
        platform gave none: always new. Committed (fsynced) when it returns,
        so the webhook may then be acknowledged.
        """
        now = self._now()
        return await self._run(_inbox_add, channel, message_id, _encode_message(message), now)

    async def inbox_pending(self) -> list[InboxItem]:
        """The items still waiting for a reply, oldest first."""
        return await self._run(_inbox_pending)

    async def inbox_mark(
        self, id: int, state: str, *, reply_status: int | None = None, error: str | None = None  # noqa: A002
    ) -> bool:
        """Record what became of an item; returns whether it changed.

        ``state`` is one of ``pending``, ``replied``, ``failed``, ``ignored``.
        ``reply_status`` (the platform's HTTP status) and ``error`` are kept
        when given. An unknown id, or an item already ``replied``, is left
        alone (``False``). Marking ``replied`` is durable when it returns.
        """
        if state not in INBOX_STATES:
            raise ValueError(f"inbox state must be one of {', '.join(INBOX_STATES)} (got {state!r})")
        counts = state in ("replied", "failed") or (state == "pending" and error is not None)
        now = self._now()
        return await self._run(_inbox_mark, int(id), state, reply_status, error, counts, now)

    async def inbox_answer(self, id: int, reply: str) -> bool:  # noqa: A002
        """Keep the reply a pending item's turn produced (durable), so that a
        restart delivers it instead of running the turn again."""
        return await self._run(_inbox_answer, int(id), reply, self._now())

    async def inbox_counts(self) -> dict[str, int]:
        """How many items are in each state (every state present, 0 when none)."""
        return await self._run(_inbox_counts)


def _inbox_add(
    conn: sqlite3.Connection, channel: str, message_id: str | None, payload: str, now: str
) -> tuple[int, bool]:
    def write(conn: sqlite3.Connection) -> tuple[int, bool]:
        cursor = conn.execute(
            """INSERT INTO inbox(channel, message_id, payload, state, received_at, updated_at)
               VALUES (?, ?, ?, 'pending', ?, ?)
               ON CONFLICT(channel, message_id) DO NOTHING""",
            (channel, message_id, payload, now, now),
        )
        if cursor.rowcount == 1:
            return int(cursor.lastrowid), True  # type: ignore[arg-type]
        row = conn.execute(
            "SELECT id FROM inbox WHERE channel = ? AND message_id = ?", (channel, message_id)
        ).fetchone()
        return int(row[0]), False

    return StoreBase._tx(conn, write, durable=True)


def _inbox_pending(conn: sqlite3.Connection) -> list[InboxItem]:
    rows = conn.execute(
        """SELECT id, channel, message_id, payload, state, attempts, received_at, reply
           FROM inbox WHERE state = 'pending' ORDER BY id"""
    )
    return [
        InboxItem(
            id=row[0],
            channel=row[1],
            message_id=row[2] or "",
            message=_decode_message(row[3]),
            state=row[4],
            attempts=row[5],
            received_at=row[6],
            reply=row[7],
        )
        for row in rows
    ]


def _inbox_mark(
    conn: sqlite3.Connection,
    item_id: int,
    state: str,
    reply_status: int | None,
    error: str | None,
    counts: bool,
    now: str,
) -> bool:
    def write(conn: sqlite3.Connection) -> bool:
        cursor = conn.execute(
            """UPDATE inbox SET state = ?, updated_at = ?, attempts = attempts + ?,
                   reply_status = COALESCE(?, reply_status), error = COALESCE(?, error)
               WHERE id = ? AND state != 'replied'""",
            (state, now, 1 if counts else 0, reply_status, error, item_id),
        )
        return cursor.rowcount == 1

    return StoreBase._tx(conn, write, durable=state == "replied")


def _inbox_answer(conn: sqlite3.Connection, item_id: int, reply: str, now: str) -> bool:
    def write(conn: sqlite3.Connection) -> bool:
        cursor = conn.execute(
            "UPDATE inbox SET reply = ?, updated_at = ? WHERE id = ? AND state = 'pending'",
            (reply, now, item_id),
        )
        return cursor.rowcount == 1

    return StoreBase._tx(conn, write, durable=True)


def _inbox_counts(conn: sqlite3.Connection) -> dict[str, int]:
    counts: dict[str, Any] = dict.fromkeys(INBOX_STATES, 0)
    counts.update(conn.execute("SELECT state, COUNT(*) FROM inbox GROUP BY state"))
    return counts
