"""Semantic memory: facts (subject / predicate / object) with history, and their full-text search."""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from exoclaw_hooks import Fact

from ._base import StoreBase

logger = logging.getLogger(__name__)

#: A word as the FTS5 ``unicode61`` tokenizer would roughly see it.
_WORD = re.compile(r"\w+")
#: Cap on the words of one query: a pasted essay must not become a huge OR.
MAX_QUERY_WORDS = 64

_FACT_COLUMNS = (
    "f.id, f.subject, f.predicate, f.object, f.learned_at, f.confidence, "
    "f.superseded_at, f.superseded_by, f.source_session"
)


def match_expression(text: str | Iterable[str]) -> str:
    """A safe FTS5 MATCH expression for plain words: each ``\\w+`` token quoted, ORed.

    ``text`` is user text or already split words. Quoting makes every token a
    literal (``AND``, ``NEAR(``, ``*``, ``"`` mean nothing), so the result can
    never be an FTS5 syntax error. Tokens are lowercased and deduplicated,
    at most :data:`MAX_QUERY_WORDS`. Empty text gives ``""``.
    """
    chunks = [text] if isinstance(text, str) else list(text)
    words: dict[str, None] = {}
    for chunk in chunks:
        for word in _WORD.findall(chunk.lower()):
            if len(words) >= MAX_QUERY_WORDS:
                break
            words.setdefault(word, None)
    return " OR ".join(f'"{w}"' for w in words)


def _norm(text: str) -> str:
    """The identity of a subject or predicate: casefolded, whitespace collapsed."""
    return " ".join(text.casefold().split())


def _fact(row: tuple[Any, ...]) -> Fact:
    return Fact(
        id=row[0],
        subject=row[1],
        predicate=row[2],
        object=row[3],
        learned_at=row[4],
        confidence=row[5],
        superseded_at=row[6],
        superseded_by=row[7],
        source_session=row[8],
    )


class FactsMixin(StoreBase):
    """Facts belong to a person key (agent, channel, account; SPEC §9)."""

    async def add_fact(self, person_key: str, fact: Fact) -> Fact:
        """Remember ``fact`` for ``person_key``; returns the stored fact (with ``id``).

        In one transaction: when an active fact of this person has the same
        subject and predicate (compared casefolded, whitespace collapsed):

        * same object (casefolded) → nothing new is stored; the existing fact
          is returned, its confidence raised to ``fact.confidence`` if higher;
        * another object → the old fact is superseded (``superseded_at`` = now,
          ``superseded_by`` = the new id) and kept; the new one is stored.

        ``learned_at`` defaults to now; ``id``, ``superseded_*`` of ``fact`` are
        ignored. Raises ``ValueError`` for an empty subject, predicate or object.
        """
        subject, predicate, obj = fact.subject.strip(), fact.predicate.strip(), fact.object.strip()
        if not (subject and predicate and obj):
            raise ValueError("a fact needs a subject, a predicate and an object")
        now = self._now()
        new = Fact(
            subject=subject,
            predicate=predicate,
            object=obj,
            learned_at=fact.learned_at or now,
            confidence=float(fact.confidence),
            source_session=fact.source_session,
        )
        return await self._run(self._add_fact, person_key, new, now)

    def _add_fact(self, conn: sqlite3.Connection, person_key: str, fact: Fact, now: str) -> Fact:
        subject_norm, predicate_norm = _norm(fact.subject), _norm(fact.predicate)

        def write(conn: sqlite3.Connection) -> Fact:
            old = conn.execute(
                f"""SELECT {_FACT_COLUMNS} FROM facts AS f
                    WHERE person_key = ? AND subject_norm = ? AND predicate_norm = ?
                      AND superseded_at IS NULL""",
                (person_key, subject_norm, predicate_norm),
            ).fetchone()
            if old is not None and _norm(old[3]) == _norm(fact.object):
                existing = _fact(old)
                if fact.confidence > existing.confidence:
                    conn.execute("UPDATE facts SET confidence = ? WHERE id = ?", (fact.confidence, existing.id))
                    existing = replace(existing, confidence=fact.confidence)
                return existing
            if old is not None:  # free the "one active fact" slot before inserting
                conn.execute("UPDATE facts SET superseded_at = ? WHERE id = ?", (now, old[0]))
            new_id = conn.execute(
                """INSERT INTO facts(person_key, subject, predicate, object, subject_norm, predicate_norm,
                                     learned_at, confidence, source_session)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    person_key,
                    fact.subject,
                    fact.predicate,
                    fact.object,
                    subject_norm,
                    predicate_norm,
                    fact.learned_at,
                    fact.confidence,
                    fact.source_session,
                ),
            ).lastrowid
            if old is not None:
                conn.execute("UPDATE facts SET superseded_by = ? WHERE id = ?", (new_id, old[0]))
            return replace(fact, id=new_id)

        return self._tx(conn, write)

    async def search_facts(
        self, person_key: str | None, match: str, limit: int = 20, include_superseded: bool = False
    ) -> list[tuple[Fact, float]]:
        """The person's facts relevant to ``match``, best first, as ``(fact, score)``.

        ``person_key`` ``None`` searches everyone's facts in one query (the
        owner's ``memory.search`` without a session).

        ``match`` is plain user text, NOT an FTS5 expression: it is split into
        words (``\\w+``), each quoted, and the words ORed (see
        :func:`match_expression`), so nothing it contains is a syntax error.
        Words match subject, predicate and object with Porter stemming
        (live / lives / lived). ``score`` is ``-bm25()``: higher is more
        relevant. Only active facts unless ``include_superseded``. No word,
        or ``limit <= 0``, gives ``[]``.
        """
        expression = match_expression(match)
        if not expression or limit <= 0:
            return []
        return await self._run(_search_facts, person_key, expression, int(limit), include_superseded)

    async def list_facts(self, person_key: str, include_superseded: bool = False) -> list[Fact]:
        """The person's facts, newest first (only the active ones unless ``include_superseded``)."""
        return await self._run(_list_facts, person_key, include_superseded)

    async def retire_fact(self, person_key: str, fact_id: int, superseded_by: int | None = None) -> Fact | None:
        """Mark the person's active fact ``fact_id`` superseded now (by ``superseded_by``, if given); it is kept.

        Returns the fact as it now is, or ``None`` when the person has no such
        active fact (another person's fact is never touched).
        """
        return await self._run(_retire_fact, person_key, int(fact_id), superseded_by, self._now())


def _search_facts(
    conn: sqlite3.Connection, person_key: str | None, expression: str, limit: int, include_superseded: bool
) -> list[tuple[Fact, float]]:
    active = "" if include_superseded else "AND f.superseded_at IS NULL"
    person = "" if person_key is None else "AND f.person_key = ?"
    params = (expression, limit) if person_key is None else (expression, person_key, limit)
    try:
        rows = conn.execute(
            f"""SELECT {_FACT_COLUMNS}, bm25(facts_fts) AS rank
                FROM facts_fts JOIN facts AS f ON f.id = facts_fts.rowid
                WHERE facts_fts MATCH ? {person} {active}
                ORDER BY rank, f.id DESC LIMIT ?""",
            params,
        ).fetchall()
    except sqlite3.OperationalError as exc:  # never expected: the expression is built safely
        logger.debug("fact search %r failed: %s", expression, exc)
        return []
    return [(_fact(row), -float(row[9])) for row in rows]


def _retire_fact(
    conn: sqlite3.Connection, person_key: str, fact_id: int, superseded_by: int | None, now: str
) -> Fact | None:
    def write(conn: sqlite3.Connection) -> Fact | None:
        done = conn.execute(
            """UPDATE facts SET superseded_at = ?, superseded_by = ?
               WHERE id = ? AND person_key = ? AND superseded_at IS NULL""",
            (now, superseded_by, fact_id, person_key),
        ).rowcount
        if not done:
            return None
        row = conn.execute(f"SELECT {_FACT_COLUMNS} FROM facts AS f WHERE id = ?", (fact_id,)).fetchone()
        return _fact(row)

    return StoreBase._tx(conn, write)


def _list_facts(conn: sqlite3.Connection, person_key: str, include_superseded: bool) -> list[Fact]:
    active = "" if include_superseded else "AND f.superseded_at IS NULL"
    rows = conn.execute(
        f"""SELECT {_FACT_COLUMNS} FROM facts AS f WHERE person_key = ? {active}
            ORDER BY learned_at DESC, id DESC""",
        (person_key,),
    )
    return [_fact(row) for row in rows]
