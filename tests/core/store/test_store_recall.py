"""Recall in the store: everything said indexed, searched per person, neighbours; the upgrade; a damaged index."""

from __future__ import annotations

import sqlite3

import pytest

from exoclaw_core.store import SQLiteStore, migrations
from exoclaw_hooks import Message, ToolCall, ToolResult

ALICE, BOB = "default:test:alice", "default:test:bob"


async def said(store, session, *texts, speaker=None):
    for text in texts:
        await store.append_turn(session, "default", [Message("user", text), Message("assistant", "ok")], 1,
                                speaker=speaker)


@pytest.fixture
async def store():
    s = SQLiteStore(None)
    yield s
    s.close()


async def test_search_is_per_person_stemmed_and_ranked(store):
    await said(store, ALICE + ":main", "I lived in Lisbon for years", "the weather is nice", "Lisbon again, living well")
    await said(store, ALICE + ":work", "budget meeting on Monday")
    await said(store, BOB + ":main", "I live in Lisbon too")
    hits = await store.search_messages(ALICE, ["live", "lisbon"], limit=10)
    texts = [m.content for m, _ in hits]
    assert texts == ["Lisbon again, living well", "I lived in Lisbon for years"]  # both words outrank one
    assert hits[0][1] >= hits[1][1] > 0
    assert all(m.speaker == "user" and m.session_key.startswith(ALICE) for m, _ in hits)
    across = await store.search_messages(ALICE, ["budget"], limit=10)
    assert [m.session_key for m, _ in across] == [ALICE + ":work"]  # every session of the person


async def test_the_window_s_turns_are_skipped_and_junk_is_never_a_syntax_error(store):
    await said(store, ALICE + ":main", "old news about the garden", "recent garden talk")
    all_hits = await store.search_messages(ALICE, ["garden"], limit=10)
    older = await store.search_messages(ALICE, ["garden"], limit=10, skip_session=ALICE + ":main", skip_last_turns=1)
    assert len(all_hits) == 2 and [m.content for m, _ in older] == ["old news about the garden"]
    for junk in (['"', "AND", "NEAR(", "*", ")"], ["x" * 5000], []):
        assert await store.search_messages(ALICE, junk, limit=5) == []


async def test_speaker_tool_messages_and_neighbours(store):
    s = ALICE + ":main"
    await said(store, s, "first", "second", speaker="Caroline")
    await store.append_turn(s, "default", [
        Message("user", "use the tool"), Message("assistant", "", tool_calls=(ToolCall("t", "echo", {"x": 1}),)),
        Message("tool", tool_results=(ToolResult("t", "tool output about zebras"),)), Message("assistant", "done")], 1)
    await said(store, s, "fourth", "fifth")
    assert await store.search_messages(ALICE, ["zebras"], limit=5) == []  # tool output is not conversation
    (hit, _), = await store.search_messages(ALICE, ["tool"], limit=5)
    assert hit.turn_seq == 3
    near = await store.messages_near([hit.id], before=3, after=2)
    assert [m.content for m in near[hit.id]] == ["ok", "second", "ok", "use the tool", "done", "fourth"]
    first = (await store.search_messages(ALICE, ["first"], limit=1))[0][0]
    assert first.speaker == "Caroline"
    assert await store.messages_near([999_999]) == {}


async def test_a_turn_keeps_its_context_composition(store):
    await store.append_turn(ALICE + ":main", "default", [Message("user", "hi")], 5,
                            context={"soul": 3, "recall": 100, "message": 1})
    await store.append_turn(BOB + ":main", "default", [Message("user", "yo")], 5)
    rows = await store.turn_contexts()
    assert rows == [{"session": ALICE + ":main", "seq": 1, "created_at": rows[0]["created_at"],
                     "context": {"soul": 3, "recall": 100, "message": 1}}]


def test_a_database_of_the_previous_schema_upgrades_keeping_every_turn_and_fact(tmp_path):
    path = tmp_path / "exoclaw.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrations.migrate(conn, migrations.MIGRATIONS[:4], now=lambda: "2026-11-01T00:00:00.000000Z")  # before recall
    conn.execute("INSERT INTO sessions VALUES ('default:t:ann:main', 'default', 'x', 'x', 2, 0)")
    conn.execute("INSERT INTO turns(session_key, seq, created_at, tokens) VALUES ('default:t:ann:main', 1, 'x', 0)")
    conn.executemany(
        "INSERT INTO messages(turn_id, session_key, role, content, created_at) VALUES (1, 'default:t:ann:main', ?, ?, 'x')",
        [("user", "my cat is called Mochi"), ("assistant", "lovely")])
    conn.execute("""INSERT INTO facts(person_key, subject, predicate, object, subject_norm, predicate_norm, learned_at)
                    VALUES ('default:t:ann', 'user''s cat', 'name', 'Mochi', 'user''s cat', 'name', 'x')""")
    conn.close()
    store = SQLiteStore(path)
    try:
        import asyncio

        async def check():
            hits = await store.search_messages("default:t:ann", ["mochi"], limit=5)
            turns = await store.load_turns("default:t:ann:main", 5)
            facts = await store.list_facts("default:t:ann")
            return hits, turns, facts
        hits, turns, facts = asyncio.run(check())
    finally:
        store.close()
    assert [(m.content, m.speaker) for m, _ in hits] == [("my cat is called Mochi", "user")]
    assert [m.content for m in turns[0].messages] == ["my cat is called Mochi", "lovely"]
    assert [f.object for f in facts] == ["Mochi"]


def test_a_damaged_full_text_index_is_rebuilt_at_start_up(tmp_path, caplog):
    path = tmp_path / "exoclaw.db"
    store = SQLiteStore(path)
    import asyncio

    asyncio.run(said(store, ALICE + ":main", "the blue bicycle", "a red kite"))
    store.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DELETE FROM messages_fts_data WHERE id > 10")  # corrupt the index's own pages
    conn.close()
    store = SQLiteStore(path)
    try:
        hits = asyncio.run(store.search_messages(ALICE, ["bicycle"], limit=5))
    finally:
        store.close()
    assert [m.content for m, _ in hits] == ["the blue bicycle"]
    assert "is damaged" in caplog.text


async def test_a_replaced_turn_leaves_the_index_too(store):
    s = ALICE + ":main"
    await said(store, s, "the first answer was about zebras")
    await store.append_turn(s, "default", [Message("user", "the first answer was about giraffes")], 1, replaces=1)
    assert await store.search_messages(ALICE, ["zebras"], limit=5) == []
    assert [m.content for m, _ in await store.search_messages(ALICE, ["giraffes"], limit=5)] == [
        "the first answer was about giraffes"]
