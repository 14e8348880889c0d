"""Sessions, turns and messages, and recall over them with PostgreSQL's full-text search.

A turn is one transaction. Its first statement creates or updates the
session's row, which locks that row until the commit: two gateways storing
turns of one session at once take their seqs one after the other, never
the same. Recall ranks the person's matching messages by ``ts_rank`` over
the ``tsv`` column (english stemming, a GIN index), the words ORed; only
the :data:`MAX_MATCHES` most recent matches are ranked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from exoclaw_hooks import Message, SessionInfo, StoredMessage, ToolCall, ToolResult, Turn

from .connection import PostgresBase, dumps, loads

_ROLES = frozenset(("user", "assistant", "tool"))
#: a word as recall sees it; at most this many words in one query (a pasted essay is not a huge OR)
WORD = re.compile(r"\w+")
MAX_QUERY_WORDS = 64
#: a search ranks at most the person's this many most recent matches (ranking every message that has a common
#: word costs milliseconds per thousand; the SQLite store leaves the commonest words out instead)
MAX_MATCHES = 1500

_COLUMNS = "m.id, m.session_key, t.seq, m.role, m.speaker, m.content, m.created_at"
_SAID = "m.role IN ('user', 'assistant') AND m.content <> ''"


def tsquery(text: str | Sequence[str]) -> str:
    """Plain words → a ``to_tsquery`` text: each word quoted, ORed (nothing in it is query syntax); ``""`` if none."""
    chunks = [text] if isinstance(text, str) else list(text)
    words: dict[str, None] = {}
    for chunk in chunks:
        for word in WORD.findall(chunk.lower()):
            if len(words) >= MAX_QUERY_WORDS:
                break
            words.setdefault(word, None)
    return " | ".join(f"'{w}'" for w in words)


def person_of(session_key: str) -> str:
    """``agent:channel:account:peer`` → ``agent:channel:account``."""
    return ":".join(session_key.split(":")[:3])


def _encode_calls(calls: Sequence[ToolCall]) -> str | None:
    return dumps([{"id": c.id, "name": c.name, "input": c.input} for c in calls]) if calls else None


def _encode_results(results: Sequence[ToolResult]) -> str | None:
    if not results:
        return None
    return dumps([{"tool_use_id": r.tool_use_id, "content": r.content, "is_error": bool(r.is_error)} for r in results])


def _decode_calls(text: str | None) -> tuple[ToolCall, ...]:
    if not text:
        return ()
    return tuple(ToolCall(id=c["id"], name=c["name"], input=c.get("input") or {}) for c in loads(text))


def _decode_results(text: str | None) -> tuple[ToolResult, ...]:
    if not text:
        return ()
    return tuple(ToolResult(tool_use_id=r["tool_use_id"], content=r.get("content", ""),
                            is_error=bool(r.get("is_error"))) for r in loads(text))


class SessionsMixin(PostgresBase):
    async def append_turn(
        self, session_key: str, agent_id: str, messages: Sequence[Message], tokens: int, *,
        speaker: str | None = None, context: Mapping[str, int] | None = None, replaces: int | None = None,
        answers: tuple[int, str] | None = None,
    ) -> Turn:
        """Store one whole turn in ONE transaction (see ``exoclaw_hooks.Store.append_turn``)."""
        messages = tuple(messages)
        for message in messages:
            if message.role not in _ROLES:
                raise ValueError(f"unknown message role: {message.role!r}")
        now = self._now()
        person = person_of(session_key)
        rows = [
            (session_key, m.role, m.content or "", _encode_calls(m.tool_calls), _encode_results(m.tool_results),
             m.created_at or now, person, (speaker or m.role) if m.role == "user" else m.role)
            for m in messages
        ]
        ctx = dumps(dict(context)) if context else None

        async def write(conn: Any) -> int:
            # every statement is sent at once (a pipeline: one round trip for the whole turn); the messages
            # find their turn's id with currval() instead of waiting for the turn's RETURNING
            async with conn.pipeline():
                async with conn.transaction():
                    await conn.execute(
                        """INSERT INTO sessions(key, agent_id, created_at, updated_at, message_count, tokens)
                           VALUES (%s, %s, %s, %s, %s, %s)
                           ON CONFLICT (key) DO UPDATE SET
                             updated_at = excluded.updated_at, touch = nextval('session_touch'),
                             message_count = sessions.message_count + excluded.message_count,
                             tokens = sessions.tokens + excluded.tokens""",
                        (session_key, agent_id, now, now, len(rows), int(tokens)))
                    if replaces is not None:  # the replaced turn goes, its messages leave the count
                        await conn.execute(
                            """WITH gone AS (DELETE FROM turns WHERE session_key = %s AND seq = %s RETURNING id),
                                    n AS (SELECT COUNT(*) AS c FROM messages WHERE turn_id IN (SELECT id FROM gone))
                               UPDATE sessions SET message_count = message_count - (SELECT c FROM n)
                               WHERE key = %s""", (session_key, replaces, session_key))
                    turn = await conn.execute(
                        """INSERT INTO turns(session_key, seq, created_at, tokens, context)
                           VALUES (%s, (SELECT COALESCE(MAX(seq), 0) + 1 FROM turns WHERE session_key = %s),
                                   %s, %s, %s)
                           RETURNING seq""", (session_key, session_key, now, int(tokens), ctx))
                    if rows:
                        async with conn.cursor() as cur:
                            await cur.executemany(
                                """INSERT INTO messages(turn_id, session_key, role, content, tool_calls,
                                                        tool_results, created_at, person_key, speaker)
                                   VALUES (currval(pg_get_serial_sequence('turns', 'id')),
                                           %s, %s, %s, %s, %s, %s, %s, %s)""", rows)
                    if answers is not None:  # the webhook reply commits with its turn
                        await conn.execute(
                            "UPDATE inbox SET reply = %s, updated_at = %s WHERE id = %s AND state = 'pending'",
                            (answers[1], now, int(answers[0])))
            return (await turn.fetchone())[0]

        seq = await self._run(write)
        stored = tuple(m if m.created_at else Message(m.role, m.content or "", m.tool_calls, m.tool_results, now)
                       for m in messages)
        return Turn(messages=stored, seq=seq, created_at=now, tokens=int(tokens))

    async def load_turns(self, session_key: str, limit: int) -> list[Turn]:
        if limit <= 0:
            return []

        async def read(conn: Any) -> list[Turn]:
            cur = await conn.execute(
                """SELECT t.id, t.seq, t.created_at, t.tokens,
                          m.role, m.content, m.tool_calls, m.tool_results, m.created_at
                   FROM (SELECT id, seq, created_at, tokens FROM turns
                         WHERE session_key = %s ORDER BY seq DESC LIMIT %s) AS t
                   LEFT JOIN messages AS m ON m.turn_id = t.id
                   ORDER BY t.seq, m.id""", (session_key, int(limit)))
            return _turns(await cur.fetchall())

        return await self._run(read)

    async def history(self, session_key: str, limit: int | None = None) -> list[dict[str, Any]]:
        if limit is not None and limit <= 0:
            return []

        async def read(conn: Any) -> list[dict[str, Any]]:
            cur = await conn.execute(
                """SELECT m.role, m.content, m.created_at, m.tool_calls, m.tool_results, t.seq
                   FROM (SELECT id, turn_id, role, content, created_at, tool_calls, tool_results FROM messages
                         WHERE session_key = %s ORDER BY id DESC LIMIT %s) AS m
                   JOIN turns AS t ON t.id = m.turn_id
                   ORDER BY m.id""", (session_key, limit))
            out: list[dict[str, Any]] = []
            for role, content, created_at, calls, results, seq in await cur.fetchall():
                item: dict[str, Any] = {"role": role, "content": content, "created_at": created_at}
                if calls:
                    item["tool_calls"] = loads(calls)
                if role == "tool":
                    item["tool_results"] = loads(results) if results else []
                item["turn"] = seq
                out.append(item)
            return out

        return await self._run(read)

    async def list_sessions(self, agent_id: str | None = None, limit: int | None = None) -> list[SessionInfo]:
        if limit is not None and limit <= 0:
            return []

        async def read(conn: Any) -> list[SessionInfo]:
            where = "WHERE agent_id = %s" if agent_id is not None else ""
            params = ((agent_id,) if agent_id is not None else ()) + (limit,)
            cur = await conn.execute(
                f"""SELECT key, agent_id, created_at, updated_at, message_count, tokens FROM sessions {where}
                    ORDER BY updated_at DESC, touch DESC LIMIT %s""", params)
            return [SessionInfo(*row) for row in await cur.fetchall()]

        return await self._run(read)

    async def count_sessions(self) -> int:
        async def read(conn: Any) -> int:
            cur = await conn.execute("SELECT COUNT(*) FROM sessions")
            return int((await cur.fetchone())[0])

        return await self._run(read)

    async def turn_contexts(self, session_key: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        async def read(conn: Any) -> list[dict[str, Any]]:
            if session_key:
                cur = await conn.execute(
                    """SELECT session_key, seq, created_at, context FROM turns
                       WHERE session_key = %s AND context IS NOT NULL ORDER BY id DESC LIMIT %s""",
                    (session_key, int(limit)))
            else:
                cur = await conn.execute(
                    """SELECT session_key, seq, created_at, context FROM turns
                       WHERE context IS NOT NULL ORDER BY id DESC LIMIT %s""", (int(limit),))
            return [{"session": k, "seq": s, "created_at": at, "context": loads(c)} for k, s, at, c in
                    await cur.fetchall()]

        return await self._run(read)

    # -- recall -----------------------------------------------------------

    async def search_messages(
        self, person_key: str, terms: Sequence[str], *, limit: int = 20,
        skip_session: str | None = None, skip_last_turns: int = 0,
    ) -> list[tuple[StoredMessage, float]]:
        """The person's messages best matching ``terms`` (ORed, stemmed), best first; score: ``ts_rank``."""
        query = tsquery(list(terms))
        if not query or limit <= 0:
            return []

        async def read(conn: Any) -> list[tuple[StoredMessage, float]]:
            recent = ""
            params: dict[str, Any] = {"q": query, "person": person_key, "limit": int(limit)}
            if skip_session and skip_last_turns > 0:
                recent = """AND m.turn_id NOT IN (SELECT id FROM turns WHERE session_key = %(skip)s
                                                  ORDER BY seq DESC LIMIT %(skip_n)s)"""
                params.update(skip=skip_session, skip_n=int(skip_last_turns))
            # rank the person's most recent matches (ids and vectors only), then read the kept few in full;
            # the query is written out (not a CTE) so the planner sees it and picks the index that fits it
            cur = await conn.execute(
                f"""WITH candidates AS (SELECT m.id, m.tsv FROM messages AS m
                                        WHERE m.tsv @@ to_tsquery('english', %(q)s) AND m.person_key = %(person)s
                                        {recent} ORDER BY m.id DESC LIMIT {MAX_MATCHES}),
                         ranked AS (SELECT c.id, ts_rank(c.tsv, to_tsquery('english', %(q)s)) AS rank
                                    FROM candidates AS c ORDER BY rank DESC, c.id DESC LIMIT %(limit)s)
                    SELECT {_COLUMNS}, r.rank FROM ranked AS r JOIN messages AS m ON m.id = r.id
                    JOIN turns AS t ON t.id = m.turn_id ORDER BY r.rank DESC, m.id DESC""", params)
            return [(StoredMessage(*row[:7]), float(row[7])) for row in await cur.fetchall()]

        return await self._run(read)

    async def messages_near(
        self, message_ids: Sequence[int], before: int = 1, after: int = 1
    ) -> dict[int, list[StoredMessage]]:
        ids = list(dict.fromkeys(int(i) for i in message_ids))
        if not ids:
            return {}

        async def read(conn: Any) -> dict[int, list[StoredMessage]]:
            # one statement for every hit: itself and its neighbours on each side, said in its session
            cur = await conn.execute(
                f"""SELECT h.id, x.* FROM unnest(%(ids)s::bigint[]) AS h(id)
                    JOIN messages AS hm ON hm.id = h.id,
                    LATERAL (
                        (SELECT {_COLUMNS} FROM messages AS m JOIN turns AS t ON t.id = m.turn_id
                         WHERE m.id = hm.id)
                        UNION ALL
                        (SELECT {_COLUMNS} FROM messages AS m JOIN turns AS t ON t.id = m.turn_id
                         WHERE m.session_key = hm.session_key AND m.id < hm.id AND {_SAID}
                         ORDER BY m.id DESC LIMIT %(before)s)
                        UNION ALL
                        (SELECT {_COLUMNS} FROM messages AS m JOIN turns AS t ON t.id = m.turn_id
                         WHERE m.session_key = hm.session_key AND m.id > hm.id AND {_SAID}
                         ORDER BY m.id LIMIT %(after)s)
                    ) AS x""", {"ids": ids, "before": max(0, int(before)), "after": max(0, int(after))})
            out: dict[int, list[StoredMessage]] = {}
            for row in await cur.fetchall():
                out.setdefault(row[0], []).append(StoredMessage(*row[1:]))
            return {i: sorted(out[i], key=lambda m: m.id) for i in ids if i in out}

        return await self._run(read)


def _turns(rows: list[tuple[Any, ...]]) -> list[Turn]:
    turns: list[Turn] = []
    current = None
    head: tuple[Any, ...] = ()
    msgs: list[Message] = []
    for row in rows:
        if row[0] != current:
            if current is not None:
                turns.append(Turn(tuple(msgs), seq=head[1], created_at=head[2], tokens=head[3]))
            current, head, msgs = row[0], row, []
        if row[4] is not None:
            msgs.append(Message(row[4], row[5], _decode_calls(row[6]), _decode_results(row[7]), row[8]))
    if current is not None:
        turns.append(Turn(tuple(msgs), seq=head[1], created_at=head[2], tokens=head[3]))
    return turns
