"""The PostgreSQL schema as migrations, applied at start-up; safe when several gateways start at once.

Every gateway runs :func:`migrate` when it opens the store. The migrations
run inside ``pg_advisory_lock(MIGRATION_LOCK)`` on one connection: the first
gateway applies them, the others wait for the lock, then find them recorded
in ``schema_migrations`` and apply nothing. Each migration is one
transaction with its record (PostgreSQL's DDL is transactional), so a
gateway killed mid-migration leaves nothing half-done.

Times are TEXT in the canonical ISO 8601 UTC form (six fractional digits, a
``Z``), as in the SQLite store: they sort as the instants they name, and a
store's rows read the same whichever implementation wrote them.

To change the schema, append a new ``(version, name, statements)`` to
:data:`MIGRATIONS`; never edit one that has shipped.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("exoclaw.store.postgres")

#: the advisory lock key that serialises migrations between gateways ("exoclaw" as a number)
MIGRATION_LOCK = 0x65786F636C6177

M001_INITIAL = (
    # touch: a global sequence number of the session's last turn, the tie-breaker of "most recent first"
    "CREATE SEQUENCE session_touch",
    """CREATE TABLE sessions (
        key TEXT PRIMARY KEY,
        agent_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        message_count INTEGER NOT NULL DEFAULT 0,
        tokens BIGINT NOT NULL DEFAULT 0,
        touch BIGINT NOT NULL DEFAULT nextval('session_touch')
    )""",
    "CREATE INDEX sessions_recent ON sessions(updated_at DESC, touch DESC)",
    """CREATE TABLE turns (
        id BIGSERIAL PRIMARY KEY,
        session_key TEXT NOT NULL REFERENCES sessions(key) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        tokens INTEGER NOT NULL DEFAULT 0,
        context TEXT,
        UNIQUE (session_key, seq)
    )""",
    # tsv: what recall searches, PostgreSQL's own full-text search (english stemming: live / lives / lived);
    # only what was said and answered (tool calls and results are not conversation)
    """CREATE TABLE messages (
        id BIGSERIAL PRIMARY KEY,
        turn_id BIGINT NOT NULL REFERENCES turns(id) ON DELETE CASCADE,
        session_key TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'tool')),
        content TEXT NOT NULL DEFAULT '',
        tool_calls TEXT,
        tool_results TEXT,
        created_at TEXT NOT NULL,
        person_key TEXT NOT NULL,
        speaker TEXT NOT NULL,
        tsv tsvector GENERATED ALWAYS AS (
            CASE WHEN role IN ('user', 'assistant') AND content <> ''
                 THEN to_tsvector('english'::regconfig, content) END
        ) STORED
    )""",
    "CREATE INDEX messages_turn ON messages(turn_id)",
    "CREATE INDEX messages_session ON messages(session_key, id)",
    "CREATE INDEX messages_person ON messages(person_key, id)",
    "CREATE INDEX messages_tsv ON messages USING GIN (tsv)",
    # no foreign key to sessions: a call is metered before its turn is committed
    """CREATE TABLE usage (
        id BIGSERIAL PRIMARY KEY,
        ts TEXT NOT NULL,
        session_key TEXT NOT NULL,
        agent_id TEXT NOT NULL,
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        input_tokens INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        cache_read_tokens INTEGER NOT NULL DEFAULT 0,
        cache_write_tokens INTEGER NOT NULL DEFAULT 0,
        cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
        priced BOOLEAN NOT NULL DEFAULT TRUE
    )""",
    # budgets sum a time range (optionally one session or agent) from a covering index
    "CREATE INDEX usage_ts ON usage(ts) INCLUDE (session_key, agent_id, input_tokens, output_tokens)",
    "CREATE INDEX usage_session ON usage(session_key, ts)",
    """CREATE TABLE facts (
        id BIGSERIAL PRIMARY KEY,
        person_key TEXT NOT NULL,
        subject TEXT NOT NULL,
        predicate TEXT NOT NULL,
        object TEXT NOT NULL,
        subject_norm TEXT NOT NULL,
        predicate_norm TEXT NOT NULL,
        learned_at TEXT NOT NULL,
        confidence DOUBLE PRECISION NOT NULL DEFAULT 1.0,
        superseded_at TEXT,
        superseded_by BIGINT REFERENCES facts(id),
        source_session TEXT,
        tsv tsvector GENERATED ALWAYS AS (
            to_tsvector('english'::regconfig, subject || ' ' || predicate || ' ' || object)
        ) STORED
    )""",
    # at most one active fact per person, subject and predicate
    """CREATE UNIQUE INDEX facts_active
       ON facts(person_key, subject_norm, predicate_norm) WHERE superseded_at IS NULL""",
    "CREATE INDEX facts_person ON facts(person_key, learned_at)",
    "CREATE INDEX facts_tsv ON facts USING GIN (tsv)",
    """CREATE TABLE kv (
        namespace TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (namespace, key)
    )""",
    # claimed_by / claimed_until: the gateway handling a pending item, and until when (a lease on the server's
    # clock, so the gateways' clocks do not matter; claims take rows with FOR UPDATE SKIP LOCKED)
    """CREATE TABLE inbox (
        id BIGSERIAL PRIMARY KEY,
        channel TEXT NOT NULL,
        message_id TEXT,
        payload TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'replied', 'failed', 'ignored')),
        attempts INTEGER NOT NULL DEFAULT 0,
        received_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        reply_status INTEGER,
        error TEXT,
        reply TEXT,
        claimed_by TEXT,
        claimed_until TIMESTAMPTZ,
        UNIQUE (channel, message_id)
    )""",
    "CREATE INDEX inbox_pending ON inbox(id) WHERE state = 'pending'",
)

M002_BUDGET_COUNTERS = (
    # a counter's row is locked (FOR UPDATE) while a reservation is checked against it: two gateways' calls
    # in the same scope are checked one after the other, so neither can pass on a sum the other is changing
    "CREATE TABLE budget_counters (key TEXT PRIMARY KEY, used BIGINT NOT NULL DEFAULT 0)",
    """CREATE TABLE budget_reservations (
        id BIGSERIAL PRIMARY KEY,
        owner TEXT NOT NULL,
        amount BIGINT NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL
    )""",
    """CREATE TABLE budget_reservation_keys (
        key TEXT NOT NULL,
        reservation_id BIGINT NOT NULL REFERENCES budget_reservations(id) ON DELETE CASCADE,
        PRIMARY KEY (key, reservation_id)
    )""",
    "CREATE INDEX budget_reservation_keys_reservation ON budget_reservation_keys(reservation_id)",
)

#: usage records say when their counts are the gateway's estimate (the provider reported none); a
#: person's usage (the session key after its agent: ``channel:account:peer``) is summed by index
M003_USAGE_ESTIMATED: tuple[str, ...] = (
    "ALTER TABLE usage ADD COLUMN estimated BOOLEAN NOT NULL DEFAULT FALSE",
    "CREATE INDEX usage_person ON usage((substr(session_key, strpos(session_key, ':') + 1)) text_pattern_ops, ts)",
)

#: (version, name, statements), in order. Append only.
MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (1, "m001_initial", M001_INITIAL),
    (2, "m002_budget_counters", M002_BUDGET_COUNTERS),
    (3, "m003_usage_estimated", M003_USAGE_ESTIMATED),
)


def migrate(conn: Any, now: str) -> list[str]:
    """Apply the migrations not yet recorded (``conn``: a psycopg connection in autocommit); returns their names."""
    applied: list[str] = []
    conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
    try:
        conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"""
        )
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        newer = sorted(v for v in done if v > MIGRATIONS[-1][0])
        if newer:
            logger.warning("event=schema_newer versions=%s (a newer exoclaw migrated this database; opening it anyway)",
                           ",".join(map(str, newer)))
        for version, name, statements in MIGRATIONS:
            if version in done:
                continue
            with conn.transaction():
                for statement in statements:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_migrations(version, name, applied_at) VALUES (%s, %s, %s)",
                             (version, name, now))
            logger.info("event=migration_applied name=%s", name)
            applied.append(name)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    return applied
