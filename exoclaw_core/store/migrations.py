"""Schema migrations: named functions, applied once each, in order, at open.

The pattern of Simon Willison's ``llm`` (``llm/migrations.py``): a migration
is a function ``mNNN_what(conn)``; its number is its version. Each runs in
its own transaction together with the row recording it in
``schema_migrations(version, name, applied_at)``, so a crash never leaves a
half-applied migration recorded or an applied one unrecorded.

Rules for adding one: append a new ``mNNN_…`` function to :data:`MIGRATIONS`
with the next number; never edit one that has shipped (a database written
by an older version must open in a newer one). Use ``conn.execute`` per
statement: ``executescript`` would commit the surrounding transaction.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Callable, Sequence

logger = logging.getLogger(__name__)

Migration = Callable[[sqlite3.Connection], None]


def _run_all(conn: sqlite3.Connection, statements: Sequence[str]) -> None:
    for statement in statements:
        conn.execute(statement)


def m001_initial(conn: sqlite3.Connection) -> None:
    """Sessions, their turns and messages; usage records; plugin key-value namespaces."""
    _run_all(
        conn,
        (
            """CREATE TABLE sessions (
                key TEXT PRIMARY KEY,
                agent_id TEXT NOT NULL,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                message_count INTEGER NOT NULL DEFAULT 0,
                tokens INTEGER NOT NULL DEFAULT 0
            )""",
            # list_sessions walks this backwards (one agent's: filtered on the
            # way); no second index, every turn updates updated_at.
            "CREATE INDEX sessions_updated ON sessions(updated_at)",
            # seq is 1-based per session; UNIQUE(session_key, seq) is also the
            # index that makes "the last N turns" O(N) and MAX(seq) O(log n).
            """CREATE TABLE turns (
                id INTEGER PRIMARY KEY,
                session_key TEXT NOT NULL REFERENCES sessions(key) ON DELETE CASCADE,
                seq INTEGER NOT NULL,
                created_at TEXT NOT NULL,
                tokens INTEGER NOT NULL DEFAULT 0,
                UNIQUE (session_key, seq)
            )""",
            # tool_calls / tool_results: JSON arrays, NULL when there are none.
            """CREATE TABLE messages (
                id INTEGER PRIMARY KEY,
                turn_id INTEGER NOT NULL REFERENCES turns(id) ON DELETE CASCADE,
                session_key TEXT NOT NULL,
                role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'tool')),
                content TEXT NOT NULL DEFAULT '',
                tool_calls TEXT,
                tool_results TEXT,
                created_at TEXT NOT NULL
            )""",
            "CREATE INDEX messages_turn ON messages(turn_id)",
            "CREATE INDEX messages_session ON messages(session_key, id)",
            # No foreign key to sessions: a call is metered before its turn
            # is committed (and a cancelled turn's calls still count).
            """CREATE TABLE usage (
                id INTEGER PRIMARY KEY,
                ts TEXT NOT NULL,
                session_key TEXT NOT NULL,
                agent_id TEXT NOT NULL,
                provider TEXT NOT NULL,
                model TEXT NOT NULL,
                input_tokens INTEGER NOT NULL DEFAULT 0,
                output_tokens INTEGER NOT NULL DEFAULT 0,
                cache_read_tokens INTEGER NOT NULL DEFAULT 0,
                cache_write_tokens INTEGER NOT NULL DEFAULT 0,
                cost_usd REAL NOT NULL DEFAULT 0,
                priced INTEGER NOT NULL DEFAULT 1
            )""",
            # Budgets read whole days from usage_daily (below); only the part
            # of a first day after a non-midnight ``since`` is summed from
            # records, through this covering index (ts range, then filters).
            """CREATE INDEX usage_ts
               ON usage(ts, session_key, agent_id, input_tokens, output_tokens)""",
            # For ``exoclaw usage --session KEY``.
            "CREATE INDEX usage_session ON usage(session_key)",
            # Per-UTC-day totals kept by a trigger, so a budget over whole days
            # (daily, monthly, a session's lifetime) reads a few rows, not
            # every call of the period: usage_daily for the global and
            # per-agent scopes (days x agents rows), usage_session_daily for
            # one session (its days).
            """CREATE TABLE usage_daily (
                day TEXT NOT NULL,
                agent_id TEXT NOT NULL,
                calls INTEGER NOT NULL DEFAULT 0,
                tokens INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (day, agent_id)
            ) WITHOUT ROWID""",
            """CREATE TABLE usage_session_daily (
                session_key TEXT NOT NULL,
                day TEXT NOT NULL,
                agent_id TEXT NOT NULL,
                calls INTEGER NOT NULL DEFAULT 0,
                tokens INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (session_key, day, agent_id)
            ) WITHOUT ROWID""",
            """CREATE TRIGGER usage_daily_insert AFTER INSERT ON usage BEGIN
                INSERT INTO usage_daily(day, agent_id, calls, tokens)
                VALUES (substr(new.ts, 1, 10), new.agent_id, 1, new.input_tokens + new.output_tokens)
                ON CONFLICT(day, agent_id) DO UPDATE SET
                    calls = calls + 1, tokens = tokens + excluded.tokens;
                INSERT INTO usage_session_daily(session_key, day, agent_id, calls, tokens)
                VALUES (new.session_key, substr(new.ts, 1, 10), new.agent_id, 1,
                        new.input_tokens + new.output_tokens)
                ON CONFLICT(session_key, day, agent_id) DO UPDATE SET
                    calls = calls + 1, tokens = tokens + excluded.tokens;
            END""",
            """CREATE TABLE kv (
                namespace TEXT NOT NULL,
                key TEXT NOT NULL,
                value TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                PRIMARY KEY (namespace, key)
            ) WITHOUT ROWID""",
        ),
    )


def m002_facts(conn: sqlite3.Connection) -> None:
    """Semantic memory: facts with their history, and an FTS5 index kept in sync by triggers."""
    _run_all(
        conn,
        (
            # *_norm: casefolded, whitespace-collapsed subject / predicate,
            # the identity of a fact for supersession.
            """CREATE TABLE facts (
                id INTEGER PRIMARY KEY,
                person_key TEXT NOT NULL,
                subject TEXT NOT NULL,
                predicate TEXT NOT NULL,
                object TEXT NOT NULL,
                subject_norm TEXT NOT NULL,
                predicate_norm TEXT NOT NULL,
                learned_at TEXT NOT NULL,
                confidence REAL NOT NULL DEFAULT 1.0,
                superseded_at TEXT,
                superseded_by INTEGER REFERENCES facts(id),
                source_session TEXT
            )""",
            # At most one active fact per person, subject and predicate.
            """CREATE UNIQUE INDEX facts_active
               ON facts(person_key, subject_norm, predicate_norm) WHERE superseded_at IS NULL""",
            "CREATE INDEX facts_person ON facts(person_key, learned_at)",
            # External-content FTS5 table: the text lives once, in facts.
            # porter over unicode61: live / lives / lived share a stem.
            """CREATE VIRTUAL TABLE facts_fts USING fts5(
                subject, predicate, object,
                content='facts', content_rowid='id', tokenize='porter unicode61'
            )""",
            """CREATE TRIGGER facts_fts_insert AFTER INSERT ON facts BEGIN
                INSERT INTO facts_fts(rowid, subject, predicate, object)
                VALUES (new.id, new.subject, new.predicate, new.object);
            END""",
            """CREATE TRIGGER facts_fts_delete AFTER DELETE ON facts BEGIN
                INSERT INTO facts_fts(facts_fts, rowid, subject, predicate, object)
                VALUES ('delete', old.id, old.subject, old.predicate, old.object);
            END""",
            # Only a change of the indexed text touches the index (supersession
            # and confidence bumps do not).
            """CREATE TRIGGER facts_fts_update AFTER UPDATE OF subject, predicate, object ON facts BEGIN
                INSERT INTO facts_fts(facts_fts, rowid, subject, predicate, object)
                VALUES ('delete', old.id, old.subject, old.predicate, old.object);
                INSERT INTO facts_fts(rowid, subject, predicate, object)
                VALUES (new.id, new.subject, new.predicate, new.object);
            END""",
        ),
    )


def m003_inbox(conn: sqlite3.Connection) -> None:
    """The webhook inbox (SPEC §7): stored before the webhook is answered, deduplicated."""
    _run_all(
        conn,
        (
            """CREATE TABLE inbox (
                id INTEGER PRIMARY KEY,
                channel TEXT NOT NULL,
                message_id TEXT,
                payload TEXT NOT NULL,
                state TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'replied', 'failed', 'ignored')),
                attempts INTEGER NOT NULL DEFAULT 0,
                received_at TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                reply_status INTEGER,
                error TEXT,
                UNIQUE (channel, message_id)
            )""",
            "CREATE INDEX inbox_pending ON inbox(id) WHERE state = 'pending'",
        ),
    )


def m004_inbox_reply(conn: sqlite3.Connection) -> None:
    """The reply a turn produced, kept until it is delivered: a restart re-sends it, never re-runs the turn."""
    _run_all(conn, ["ALTER TABLE inbox ADD COLUMN reply TEXT"])


def m005_recall(conn: sqlite3.Connection) -> None:
    """Recall over everything said (SPEC §9): each message's person and speaker, a full-text index of
    what was said and answered, and each turn's context composition."""
    _run_all(conn, [
        "ALTER TABLE messages ADD COLUMN person_key TEXT",
        "ALTER TABLE messages ADD COLUMN speaker TEXT",
        "ALTER TABLE turns ADD COLUMN context TEXT",
    ])
    sessions = [row[0] for row in conn.execute("SELECT DISTINCT session_key FROM messages")]
    # the person of a session agent:channel:account:peer is agent:channel:account
    conn.executemany("UPDATE messages SET person_key = ? WHERE session_key = ?",
                     [(":".join(key.split(":")[:3]), key) for key in sessions])
    conn.execute("UPDATE messages SET speaker = role")
    _run_all(conn, [
        # a person's messages in order: neighbours of a hit, and the person filter of a search
        "CREATE INDEX messages_person ON messages(person_key, id)",
        # External content: the text lives once, in messages. Only what was said and
        # answered is indexed (tool calls and results are not conversation).
        """CREATE VIRTUAL TABLE messages_fts USING fts5(
            content, content='messages', content_rowid='id', tokenize='porter unicode61'
        )""",
        """CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages
           WHEN new.role IN ('user', 'assistant') AND new.content != '' BEGIN
            INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
        END""",
        """CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
           WHEN old.role IN ('user', 'assistant') AND old.content != '' BEGIN
            INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
        END""",
        """INSERT INTO messages_fts(rowid, content)
           SELECT id, content FROM messages WHERE role IN ('user', 'assistant') AND content != ''""",
    ])


def m006_usage_estimated(conn: sqlite3.Connection) -> None:
    """Usage records say when their counts are the gateway's estimate (the provider reported none);
    a person's usage (the session key after its agent: ``channel:account:peer``) is found by index."""
    conn.execute("ALTER TABLE usage ADD COLUMN estimated INTEGER NOT NULL DEFAULT 0")
    conn.execute("CREATE INDEX usage_person ON usage(substr(session_key, instr(session_key, ':') + 1), ts)")


def m007_budget_counters(conn: sqlite3.Connection) -> None:
    """Budget counters and the reservations in flight on them (``Store.budget_reserve``)."""
    _run_all(conn, [
        "CREATE TABLE budget_counters (key TEXT PRIMARY KEY, used INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID",
        """CREATE TABLE budget_reservations (
            id INTEGER PRIMARY KEY,
            owner TEXT NOT NULL,
            amount INTEGER NOT NULL,
            expires_at TEXT NOT NULL
        )""",
        """CREATE TABLE budget_reservation_keys (
            key TEXT NOT NULL,
            reservation_id INTEGER NOT NULL REFERENCES budget_reservations(id) ON DELETE CASCADE,
            PRIMARY KEY (key, reservation_id)
        ) WITHOUT ROWID""",
        "CREATE INDEX budget_reservation_keys_reservation ON budget_reservation_keys(reservation_id)",
    ])


#: Every migration, in order. Append only.
MIGRATIONS: tuple[Migration, ...] = (
    m001_initial, m002_facts, m003_inbox, m004_inbox_reply, m005_recall, m006_usage_estimated,
    m007_budget_counters,
)

_NAME = re.compile(r"^m(\d{3,})_\w+$")


def version_of(migration: Migration) -> int:
    """``m012_something`` → 12."""
    match = _NAME.match(migration.__name__)
    if not match:
        raise ValueError(f"a migration is named mNNN_what, not {migration.__name__!r}")
    return int(match.group(1))


def applied(conn: sqlite3.Connection) -> dict[int, str]:
    """The versions recorded in the database (empty for a new one)."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    ).fetchone()
    if not exists:
        return {}
    return dict(conn.execute("SELECT version, name FROM schema_migrations"))


def migrate(
    conn: sqlite3.Connection,
    migrations: Sequence[Migration] = MIGRATIONS,
    *,
    now: Callable[[], str],
) -> list[str]:
    """Apply the migrations not yet recorded, each in its own transaction.

    ``conn`` must be in autocommit mode (``isolation_level=None``). Returns
    the names applied. Safe against another process migrating at the same
    time: what is applied is re-read inside each write transaction.
    """
    versions = [version_of(m) for m in migrations]
    if versions != sorted(set(versions)):
        raise ValueError("migration versions must be unique and in increasing order")
    conn.execute(
        """CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at TEXT NOT NULL
        )"""
    )
    done = applied(conn)
    newer = sorted(v for v in done if v > max(versions, default=0))
    if newer:
        logger.warning(
            "database schema has migrations this version does not know (%s); opening it anyway",
            ", ".join(done[v] for v in newer),
        )
    names: list[str] = []
    for version, migration in zip(versions, migrations):
        if version in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (version,)).fetchone():
                conn.execute("ROLLBACK")
                continue
            migration(conn)
            conn.execute(
                "INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, ?, ?)",
                (version, migration.__name__, now()),
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        logger.debug("applied migration %s", migration.__name__)
        names.append(migration.__name__)
    return names


def check_index(conn: sqlite3.Connection) -> bool:
    """Rebuild a full-text index that fails its integrity check from the stored rows; True if it was rebuilt."""
    rebuilt = False
    for table in ("messages_fts", "facts_fts"):
        try:
            conn.execute(f"INSERT INTO {table}({table}) VALUES ('integrity-check')")
        except sqlite3.DatabaseError as exc:
            logger.warning("the full-text index %s is damaged (%s): rebuilding it from the stored rows", table, exc)
            conn.execute(f"INSERT INTO {table}({table}) VALUES ('rebuild')")
            rebuilt = True
    return rebuilt
