"""Semantic memory: facts with their history, searched with PostgreSQL's full-text search."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from exoclaw_hooks import Fact

from .connection import PostgresBase
from .sessions import tsquery

_COLUMNS = ("f.id, f.subject, f.predicate, f.object, f.learned_at, f.confidence, f.superseded_at, f.superseded_by, "
            "f.source_session")


def _norm(text: str) -> str:
    """The identity of a subject or predicate: casefolded, whitespace collapsed."""
    return " ".join(text.casefold().split())


def _fact(row: tuple[Any, ...]) -> Fact:
    return Fact(id=row[0], subject=row[1], predicate=row[2], object=row[3], learned_at=row[4],
                confidence=float(row[5]), superseded_at=row[6], superseded_by=row[7], source_session=row[8])


class FactsMixin(PostgresBase):
    async def add_fact(self, person_key: str, fact: Fact) -> Fact:
        """Remember a fact; same subject + predicate with another object supersedes (see ``Store.add_fact``)."""
        subject, predicate, obj = fact.subject.strip(), fact.predicate.strip(), fact.object.strip()
        if not (subject and predicate and obj):
            raise ValueError("a fact needs a subject, a predicate and an object")
        now = self._now()
        new = Fact(subject=subject, predicate=predicate, object=obj, learned_at=fact.learned_at or now,
                   confidence=float(fact.confidence), source_session=fact.source_session)
        s_norm, p_norm = _norm(subject), _norm(predicate)

        async def write(conn: Any) -> Fact:
            # the active fact's row is locked: two gateways learning the same thing at once take turns
            cur = await conn.execute(
                f"""SELECT {_COLUMNS} FROM facts AS f WHERE person_key = %s AND subject_norm = %s
                    AND predicate_norm = %s AND superseded_at IS NULL FOR UPDATE""", (person_key, s_norm, p_norm))
            old = await cur.fetchone()
            if old is not None and _norm(old[3]) == _norm(obj):
                existing = _fact(old)
                if new.confidence > existing.confidence:
                    await conn.execute("UPDATE facts SET confidence = %s WHERE id = %s", (new.confidence, existing.id))
                    existing = replace(existing, confidence=new.confidence)
                return existing
            if old is not None:
                await conn.execute("UPDATE facts SET superseded_at = %s WHERE id = %s", (now, old[0]))
            cur = await conn.execute(
                """INSERT INTO facts(person_key, subject, predicate, object, subject_norm, predicate_norm,
                                     learned_at, confidence, source_session)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
                (person_key, subject, predicate, obj, s_norm, p_norm, new.learned_at, new.confidence,
                 new.source_session))
            new_id = (await cur.fetchone())[0]
            if old is not None:
                await conn.execute("UPDATE facts SET superseded_by = %s WHERE id = %s", (new_id, old[0]))
            return replace(new, id=new_id)

        return await self._run(write, tx=True)

    async def search_facts(
        self, person_key: str | None, match: str, limit: int = 20, include_superseded: bool = False
    ) -> list[tuple[Fact, float]]:
        query = tsquery(match)
        if not query or limit <= 0:
            return []

        async def read(conn: Any) -> list[tuple[Fact, float]]:
            active = "" if include_superseded else "AND f.superseded_at IS NULL"
            person = "" if person_key is None else "AND f.person_key = %s"
            params = (query, limit) if person_key is None else (query, person_key, limit)
            cur = await conn.execute(
                f"""SELECT {_COLUMNS}, ts_rank(f.tsv, q) AS rank FROM facts AS f, to_tsquery('english', %s) AS q
                    WHERE f.tsv @@ q {person} {active} ORDER BY rank DESC, f.id DESC LIMIT %s""", params)
            return [(_fact(row), float(row[9])) for row in await cur.fetchall()]

        return await self._run(read)

    async def list_facts(self, person_key: str, include_superseded: bool = False) -> list[Fact]:
        async def read(conn: Any) -> list[Fact]:
            active = "" if include_superseded else "AND superseded_at IS NULL"
            cur = await conn.execute(
                f"SELECT {_COLUMNS} FROM facts AS f WHERE person_key = %s {active} ORDER BY learned_at DESC, id DESC",
                (person_key,))
            return [_fact(row) for row in await cur.fetchall()]

        return await self._run(read)

    async def retire_fact(self, person_key: str, fact_id: int, superseded_by: int | None = None) -> Fact | None:
        now = self._now()

        async def write(conn: Any) -> Fact | None:
            cur = await conn.execute(
                f"""UPDATE facts AS f SET superseded_at = %s, superseded_by = %s
                    WHERE id = %s AND person_key = %s AND superseded_at IS NULL RETURNING {_COLUMNS}""",
                (now, superseded_by, int(fact_id), person_key))
            row = await cur.fetchone()
            return None if row is None else _fact(row)

        return await self._run(write)
