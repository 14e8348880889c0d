"""Sessions, turns and messages."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from exoclaw_hooks import Message, SessionInfo, ToolCall, ToolResult, Turn

from ._base import StoreBase, dumps, loads

_ROLES = frozenset(("user", "assistant", "tool"))


def _encode_calls(calls: Sequence[ToolCall]) -> str | None:
    if not calls:
        return None
    return dumps([{"id": c.id, "name": c.name, "input": c.input} for c in calls])


def _encode_results(results: Sequence[ToolResult]) -> str | None:
    if not results:
        return None
    return dumps(
        [{"tool_use_id": r.tool_use_id, "content": r.content, "is_error": bool(r.is_error)} for r in results]
    )


def _decode_calls(text: str | None) -> tuple[ToolCall, ...]:
    if not text:
        return ()
    return tuple(ToolCall(id=c["id"], name=c["name"], input=c.get("input") or {}) for c in loads(text))


def _decode_results(text: str | None) -> tuple[ToolResult, ...]:
    if not text:
        return ()
    return tuple(
        ToolResult(tool_use_id=r["tool_use_id"], content=r.get("content", ""), is_error=bool(r.get("is_error")))
        for r in loads(text)
    )


def _session_info(row: tuple[Any, ...]) -> SessionInfo:
    return SessionInfo(
        key=row[0], agent_id=row[1], created_at=row[2], updated_at=row[3], message_count=row[4], tokens=row[5]
    )


_SESSION_COLUMNS = "key, agent_id, created_at, updated_at, message_count, tokens"


class SessionsMixin(StoreBase):
    """Conversations: whole turns in, whole turns (or flat history) out."""

    # -- writing ----------------------------------------------------------

    async def append_turn(
        self, session_key: str, agent_id: str, messages: Sequence[Message], tokens: int, *,
        speaker: str | None = None, context: Mapping[str, int] | None = None, replaces: int | None = None,
        answers: tuple[int, str] | None = None,
    ) -> Turn:
        """Store one whole turn (its messages in order) in ONE transaction.

        Creates the session on its first turn, else bumps its ``updated_at``,
        ``message_count`` and ``tokens``. Messages without a ``created_at``
        get the turn's time. Each message is filed under the session's person
        (``agent:channel:account``) and a speaker: ``speaker`` (the name a
        channel reported) for the user's messages, else the role. ``context``
        is the composition of the turn's context (tokens by section). What was
        said and answered joins the full-text index of recall. Returns the
        stored ``Turn`` with its 1-based ``seq`` in the session and its
        ``created_at``. When this returns the turn is committed (it survives
        the process being killed).

        ``replaces``: the seq of a turn of this session that the new one
        replaces (a regenerated answer); it is removed with its messages (and
        their place in the index) in the same transaction (its tokens stay
        counted: they were spent). When it was the last turn, the new one
        takes its seq.

        ``answers``: ``(inbox id, reply)`` when the turn answers a webhook
        message: the reply is kept with the still-pending inbox item in the
        same transaction, so no crash can leave the turn stored and its
        reply unknown (a restart re-sends the reply, never re-runs the turn).
        """
        messages = tuple(messages)
        for message in messages:
            if message.role not in _ROLES:
                raise ValueError(f"unknown message role: {message.role!r}")
        now = self._now()
        return await self._run(
            self._append_turn, session_key, agent_id, messages, int(tokens), now, speaker,
            dumps(dict(context)) if context else None, replaces, answers,
        )

    def _append_turn(
        self,
        conn: sqlite3.Connection,
        session_key: str,
        agent_id: str,
        messages: tuple[Message, ...],
        tokens: int,
        now: str,
        speaker: str | None = None,
        context: str | None = None,
        replaces: int | None = None,
        answers: tuple[int, str] | None = None,
    ) -> Turn:
        person = person_of(session_key)
        rows = [
            (
                session_key,
                m.role,
                m.content or "",
                _encode_calls(m.tool_calls),
                _encode_results(m.tool_results),
                m.created_at or now,
                person,
                (speaker or m.role) if m.role == "user" else m.role,
            )
            for m in messages
        ]

        def write(conn: sqlite3.Connection) -> int:
            if replaces is not None:
                removed = conn.execute(
                    """SELECT COUNT(*) FROM messages WHERE turn_id =
                       (SELECT id FROM turns WHERE session_key = ? AND seq = ?)""", (session_key, replaces),
                ).fetchone()[0]
                conn.execute("DELETE FROM turns WHERE session_key = ? AND seq = ?", (session_key, replaces))
                conn.execute("UPDATE sessions SET message_count = message_count - ? WHERE key = ?",
                             (removed, session_key))
            conn.execute(
                """INSERT INTO sessions(key, agent_id, created_at, updated_at, message_count, tokens)
                   VALUES (?, ?, ?, ?, ?, ?)
                   ON CONFLICT(key) DO UPDATE SET
                     updated_at = excluded.updated_at,
                     message_count = message_count + excluded.message_count,
                     tokens = tokens + excluded.tokens""",
                (session_key, agent_id, now, now, len(rows), tokens),
            )
            seq = conn.execute(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM turns WHERE session_key = ?", (session_key,)
            ).fetchone()[0]
            turn_id = conn.execute(
                "INSERT INTO turns(session_key, seq, created_at, tokens, context) VALUES (?, ?, ?, ?, ?)",
                (session_key, seq, now, tokens, context),
            ).lastrowid
            conn.executemany(
                """INSERT INTO messages(turn_id, session_key, role, content, tool_calls, tool_results, created_at,
                                        person_key, speaker)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [(turn_id, *row) for row in rows],
            )
            if answers is not None:
                conn.execute("UPDATE inbox SET reply = ?, updated_at = ? WHERE id = ? AND state = 'pending'",
                             (answers[1], now, int(answers[0])))
            return seq

        seq = self._tx(conn, write)
        stored = tuple(
            m if m.created_at else Message(m.role, m.content or "", m.tool_calls, m.tool_results, now)
            for m in messages
        )
        return Turn(messages=stored, seq=seq, created_at=now, tokens=tokens)

    # -- reading ----------------------------------------------------------

    async def load_turns(self, session_key: str, limit: int) -> list[Turn]:
        """The session's last ``limit`` turns, oldest first, each whole.

        Reads only those turns (the ``(session_key, seq)`` index), however
        long the session is. An unknown session or ``limit <= 0`` gives ``[]``.
        """
        if limit <= 0:
            return []
        return await self._run(_load_turns, session_key, int(limit))

    async def history(self, session_key: str, limit: int | None = None) -> list[dict[str, Any]]:
        """The stored messages, oldest first, as ``chat.history`` sends them (SPEC §4).

        Each is ``{"role", "content", "created_at", "turn"}`` (``turn`` = the
        turn's ``seq``), plus ``"tool_calls": [{"id", "name", "input"}]`` when
        the message made any and ``"tool_results": [{"tool_use_id",
        "content", "is_error"}]`` for a ``tool`` message. ``limit`` keeps the
        last N messages (``None``: all).
        """
        if limit is not None and limit <= 0:
            return []
        return await self._run(_history, session_key, -1 if limit is None else int(limit))

    async def list_sessions(self, agent_id: str | None = None, limit: int | None = None) -> list[SessionInfo]:
        """Sessions, most recently updated first; optionally one agent's, at most ``limit``."""
        if limit is not None and limit <= 0:
            return []
        return await self._run(_list_sessions, agent_id, -1 if limit is None else int(limit))

    async def turn_contexts(self, session_key: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The last ``limit`` turns' context compositions (newest first), of one session or of all."""
        return await self._run(_turn_contexts, session_key, int(limit))

    async def count_sessions(self) -> int:
        """How many sessions are stored."""
        return await self._run(_count_sessions)


def _load_turns(conn: sqlite3.Connection, session_key: str, limit: int) -> list[Turn]:
    rows = conn.execute(
        """SELECT t.id, t.seq, t.created_at, t.tokens,
                  m.role, m.content, m.tool_calls, m.tool_results, m.created_at
           FROM (SELECT id, seq, created_at, tokens FROM turns
                 WHERE session_key = ? ORDER BY seq DESC LIMIT ?) AS t
           LEFT JOIN messages AS m ON m.turn_id = t.id
           ORDER BY t.seq, m.id""",
        (session_key, limit),
    ).fetchall()
    turns: list[Turn] = []
    current_id = None
    head: tuple[Any, ...] = ()
    msgs: list[Message] = []
    for row in rows:
        if row[0] != current_id:
            if current_id is not None:
                turns.append(Turn(tuple(msgs), seq=head[1], created_at=head[2], tokens=head[3]))
            current_id, head, msgs = row[0], row, []
        if row[4] is not None:
            msgs.append(Message(row[4], row[5], _decode_calls(row[6]), _decode_results(row[7]), row[8]))
    if current_id is not None:
        turns.append(Turn(tuple(msgs), seq=head[1], created_at=head[2], tokens=head[3]))
    return turns


def _history(conn: sqlite3.Connection, session_key: str, limit: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        """SELECT m.role, m.content, m.created_at, m.tool_calls, m.tool_results, t.seq
           FROM (SELECT id, turn_id, role, content, created_at, tool_calls, tool_results FROM messages
                 WHERE session_key = ? ORDER BY id DESC LIMIT ?) AS m
           JOIN turns AS t ON t.id = m.turn_id
           ORDER BY m.id""",
        (session_key, limit),
    ).fetchall()
    out: list[dict[str, Any]] = []
    for role, content, created_at, calls, results, seq in rows:
        item: dict[str, Any] = {"role": role, "content": content, "created_at": created_at}
        if calls:
            item["tool_calls"] = loads(calls)
        if role == "tool":
            item["tool_results"] = loads(results) if results else []
        item["turn"] = seq
        out.append(item)
    return out


def _list_sessions(conn: sqlite3.Connection, agent_id: str | None, limit: int) -> list[SessionInfo]:
    if agent_id is None:
        rows = conn.execute(
            f"SELECT {_SESSION_COLUMNS} FROM sessions ORDER BY updated_at DESC, rowid DESC LIMIT ?", (limit,)
        )
    else:
        rows = conn.execute(
            f"""SELECT {_SESSION_COLUMNS} FROM sessions WHERE agent_id = ?
                ORDER BY updated_at DESC, rowid DESC LIMIT ?""",
            (agent_id, limit),
        )
    return [_session_info(row) for row in rows]


def _count_sessions(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]


def person_of(session_key: str) -> str:
    """``agent:channel:account:peer`` → ``agent:channel:account`` (parts are escaped: splitting is exact)."""
    return ":".join(session_key.split(":")[:3])


def _turn_contexts(conn: sqlite3.Connection, session_key: str | None, limit: int) -> list[dict[str, Any]]:
    where, params = ("WHERE session_key = ? AND context IS NOT NULL", (session_key, limit)) if session_key else (
        "WHERE context IS NOT NULL", (limit,))
    rows = conn.execute(
        f"SELECT session_key, seq, created_at, context FROM turns {where} ORDER BY id DESC LIMIT ?", params
    ).fetchall()
    return [{"session": key, "seq": seq, "created_at": at, "context": loads(ctx)} for key, seq, at, ctx in rows]
