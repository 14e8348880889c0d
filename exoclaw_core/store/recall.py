"""Recall: everything said, searchable (SPEC §9).

User and assistant messages are indexed by FTS5 (``messages_fts``, Porter
stemming over unicode61, kept in sync by triggers; see migration m005). A
search ranks the matches (the words ORed, the person's messages only) by
bm25 on their ids alone, then reads the kept ones in full; the neighbours of
the hits are one batched query on the ``(session_key, id)`` index.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from typing import Any

from exoclaw_hooks import StoredMessage

from ._base import StoreBase
from .facts import match_expression

logger = logging.getLogger(__name__)

#: a search ranks at most about this many matches: the most common words are left out above it
#: (they weigh least in bm25, and ranking every message that has one costs milliseconds)
MAX_MATCHES = 1500

_COLUMNS = "m.id, m.session_key, t.seq, m.role, COALESCE(m.speaker, m.role), m.content, m.created_at"
_SAID = "m.role IN ('user', 'assistant') AND m.content != ''"


def _message(row: tuple[Any, ...]) -> StoredMessage:
    return StoredMessage(*row[:7])


class RecallMixin(StoreBase):
    async def search_messages(
        self, person_key: str, terms: Sequence[str], *, limit: int = 20,
        skip_session: str | None = None, skip_last_turns: int = 0,
    ) -> list[tuple[StoredMessage, float]]:
        """The person's messages that best match ``terms`` (plain words, ORed), best first, with a score
        (``-bm25``: higher is better).

        Words are quoted (nothing in them is FTS syntax) and stemmed (live /
        lives / lived). ``skip_session``'s last ``skip_last_turns`` turns are
        left out (the window shows them already). No word, or ``limit <= 0``: ``[]``.
        """
        words = [w for w in (match_expression([t]) for t in terms) if w]
        if not words or limit <= 0:
            return []
        return await self._run(_search, person_key, words, int(limit), skip_session, int(skip_last_turns))

    async def messages_near(
        self, message_ids: Sequence[int], before: int = 1, after: int = 1
    ) -> dict[int, list[StoredMessage]]:
        """For each id: the message with up to ``before``/``after`` neighbours said in its session, in order."""
        if not message_ids:
            return {}
        return await self._run(_near, list(dict.fromkeys(int(i) for i in message_ids)), int(before), int(after))


def _rarest(conn: sqlite3.Connection, words: list[str]) -> str:
    """The words ORed, the commonest left out while the matches would exceed :data:`MAX_MATCHES`."""
    if len(words) == 1:
        return words[0]
    counted = sorted(
        (conn.execute("SELECT count(*) FROM messages_fts WHERE messages_fts MATCH ?", (w,)).fetchone()[0], w)
        for w in dict.fromkeys(words)
    )
    kept, total = [], 0
    for count, word in counted:
        if kept and total + count > MAX_MATCHES:
            break
        kept.append(word)
        total += count
    return " OR ".join(kept)


def _search(
    conn: sqlite3.Connection, person_key: str, words: list[str], limit: int, skip_session: str | None, skip: int
) -> list[tuple[StoredMessage, float]]:
    """Two steps: rank the matches by id only (a narrow sort), then read the few kept in full."""
    expression = _rarest(conn, words)
    recent = ""
    params: list[Any] = [expression, person_key]
    if skip_session and skip > 0:
        recent = "AND m.turn_id NOT IN (SELECT id FROM turns WHERE session_key = ? ORDER BY seq DESC LIMIT ?)"
        params += [skip_session, skip]
    try:
        ranked = conn.execute(
            f"""SELECT m.id, bm25(messages_fts) AS rank
                FROM messages_fts JOIN messages AS m ON m.id = messages_fts.rowid
                WHERE messages_fts MATCH ? AND m.person_key = ? {recent}
                ORDER BY rank, m.id DESC LIMIT ?""",
            (*params, limit),
        ).fetchall()
    except sqlite3.OperationalError as exc:  # never expected: the expression is built safely
        logger.debug("message search %r failed: %s", expression, exc)
        return []
    if not ranked:
        return []
    marks = ",".join("?" * len(ranked))
    rows = {row[0]: row for row in conn.execute(
        f"SELECT {_COLUMNS} FROM messages AS m JOIN turns AS t ON t.id = m.turn_id WHERE m.id IN ({marks})",
        [i for i, _ in ranked])}
    return [(_message(rows[i]), -float(rank)) for i, rank in ranked if i in rows]


def _near(conn: sqlite3.Connection, ids: list[int], before: int, after: int) -> dict[int, list[StoredMessage]]:
    """Few statements: the hits' sessions, then each side of each hit a LIMIT on the (session, id) index,
    all in one compound select."""
    sessions: dict[int, str] = {}
    for start in range(0, len(ids), 900):
        chunk = ids[start:start + 900]
        sessions.update(conn.execute(
            f"SELECT id, session_key FROM messages WHERE id IN ({','.join('?' * len(chunk))})", chunk))
    one = f"SELECT * FROM (SELECT {_COLUMNS}, ? AS hit FROM messages AS m JOIN turns AS t ON t.id = m.turn_id"
    sides: list[tuple[str, tuple[Any, ...]]] = []
    for i in ids:
        if i not in sessions:
            continue
        sides.append((f"{one} WHERE m.id = ?)", (i, i)))
        if before > 0:
            sides.append((f"{one} WHERE m.session_key = ? AND m.id < ? AND {_SAID} ORDER BY m.id DESC LIMIT ?)",
                          (i, sessions[i], i, before)))
        if after > 0:
            sides.append((f"{one} WHERE m.session_key = ? AND m.id > ? AND {_SAID} ORDER BY m.id LIMIT ?)",
                          (i, sessions[i], i, after)))
    out: dict[int, list[StoredMessage]] = {}
    for start in range(0, len(sides), 450):  # SQLite allows 500 terms in one compound select
        chunk = sides[start:start + 450]
        sql = " UNION ALL ".join(q for q, _ in chunk)
        for row in conn.execute(sql, [p for _, ps in chunk for p in ps]):
            out.setdefault(row[7], []).append(_message(row))
    for group in out.values():
        group.sort(key=lambda m: m.id)
    return {i: out[i] for i in ids if i in out}
