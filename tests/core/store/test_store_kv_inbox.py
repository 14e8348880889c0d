"""Plugin key-value namespaces (blocking, from many threads) and the webhook inbox."""

from __future__ import annotations

import asyncio
import threading

import pytest

from exoclaw_core.store import INBOX_STATES, SQLiteStore
from exoclaw_hooks import IncomingMessage


@pytest.fixture
def store(tmp_path):
    s = SQLiteStore(tmp_path / "exoclaw.db")
    yield s
    s.close()


# -- kv -------------------------------------------------------------------


def test_kv_round_trip(store):
    assert store.kv_get("ns", "k") is None
    store.kv_set("ns", "k", "v1")
    assert store.kv_get("ns", "k") == "v1"
    store.kv_set("ns", "k", "v2")
    assert store.kv_get("ns", "k") == "v2"
    store.kv_set("other", "k", "elsewhere")
    assert store.kv_get("ns", "k") == "v2"
    store.kv_delete("ns", "k")
    assert store.kv_get("ns", "k") is None
    assert store.kv_get("other", "k") == "elsewhere"
    store.kv_delete("ns", "never-there")  # no error
    store.kv_set("ns", "empty", "")
    assert store.kv_get("ns", "empty") == ""
    with pytest.raises(TypeError):
        store.kv_set("ns", "k", 3)  # type: ignore[arg-type]


def test_kv_from_many_threads_at_once(store):
    threads, per_thread = 8, 150
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def work(t: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                store.kv_set(f"ns{t % 2}", f"{t}-{i}", f"value {t} {i}")
                assert store.kv_get(f"ns{t % 2}", f"{t}-{i}") == f"value {t} {i}"
                store.kv_set("shared", "counter", f"{t}-{i}")
                if i % 3 == 0:
                    store.kv_delete(f"ns{t % 2}", f"{t}-{i}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    assert errors == []
    for t in range(threads):
        for i in range(per_thread):
            expected = None if i % 3 == 0 else f"value {t} {i}"
            assert store.kv_get(f"ns{t % 2}", f"{t}-{i}") == expected
    assert store.kv_get("shared", "counter") is not None


@pytest.mark.asyncio
async def test_kv_while_async_work_runs(store):
    """WASM threads use kv while the event loop's store work goes on."""
    from exoclaw_hooks import Message

    def wasm_thread() -> None:
        for i in range(200):
            store.kv_set("wasm", str(i), str(i))

    th = threading.Thread(target=wasm_thread)
    th.start()
    for i in range(50):
        await store.append_turn("s", "a", [Message("user", str(i))], 1)
    await asyncio.to_thread(th.join)
    assert store.kv_get("wasm", "199") == "199"
    assert len(await store.load_turns("s", 100)) == 50


# -- inbox ----------------------------------------------------------------


def msg(text: str = "hi", **kw) -> IncomingMessage:
    return IncomingMessage("telegram", "42", text, peer="chat-7", message_id=kw.pop("message_id", "1001"), **kw)


@pytest.mark.asyncio
async def test_inbox_add_detects_duplicates(store):
    first = await store.inbox_add("telegram", "1001", msg(reply_to={"chat_id": 7}))
    again = await store.inbox_add("telegram", "1001", msg("a retry with other text"))
    other_channel = await store.inbox_add("mock", "1001", msg())
    other_id = await store.inbox_add("telegram", "1002", msg())
    assert first[1] is True and again == (first[0], False)
    assert other_channel[1] and other_id[1]
    assert len({first[0], other_channel[0], other_id[0]}) == 3
    (item, *_rest) = await store.inbox_pending()
    assert item.message.content == "hi"  # the retry did not overwrite it


@pytest.mark.asyncio
async def test_inbox_pending_round_trip_oldest_first(store):
    original = msg(reply_to={"chat_id": 7, "thread": {"deep": [1, "x"]}}, guild="g", system_extra="be brief")
    a, _ = await store.inbox_add("telegram", "1", original)
    b, _ = await store.inbox_add("telegram", "2", msg("second"))
    c, _ = await store.inbox_add("mock", "3", msg("third"))
    pending = await store.inbox_pending()
    assert [p.id for p in pending] == [a, b, c]
    first = pending[0]
    assert first.message == original
    assert (first.channel, first.message_id, first.state, first.attempts) == ("telegram", "1", "pending", 0)
    assert first.received_at.endswith("Z")


@pytest.mark.asyncio
async def test_inbox_without_platform_id_is_always_new(store):
    a = await store.inbox_add("mock", None, msg(message_id=None))
    b = await store.inbox_add("mock", None, msg(message_id=None))
    assert a[1] and b[1] and a[0] != b[0]
    assert [p.message_id for p in await store.inbox_pending()] == ["", ""]


@pytest.mark.asyncio
async def test_inbox_mark_states_attempts_and_final_reply(store):
    a, _ = await store.inbox_add("telegram", "1", msg())
    b, _ = await store.inbox_add("telegram", "2", msg())
    c, _ = await store.inbox_add("telegram", "3", msg())
    # a: one failed attempt, retried later, then replied
    assert await store.inbox_mark(a, "pending", error="connection refused")
    pending = {p.id: p for p in await store.inbox_pending()}
    assert pending[a].attempts == 1
    assert await store.inbox_mark(a, "replied", reply_status=200)
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # back to NORMAL after the fsync
    # b: gave up
    assert await store.inbox_mark(b, "failed", reply_status=500, error="server error")
    # c: nothing to answer
    assert await store.inbox_mark(c, "ignored")
    assert await store.inbox_pending() == []
    assert await store.inbox_counts() == {"pending": 0, "replied": 1, "failed": 1, "ignored": 1}
    row = store._conn.execute("SELECT state, attempts, reply_status, error FROM inbox WHERE id = ?", (a,)).fetchone()
    assert row == ("replied", 2, 200, "connection refused")
    row = store._conn.execute("SELECT attempts FROM inbox WHERE id = ?", (c,)).fetchone()
    assert row == (0,)
    # a reply recorded as sent is never re-opened, so never sent again
    assert await store.inbox_mark(a, "pending") is False
    assert await store.inbox_mark(a, "failed", error="late") is False
    assert await store.inbox_pending() == []
    # a failed item may be retried by hand
    assert await store.inbox_mark(b, "pending")
    assert [p.id for p in await store.inbox_pending()] == [b]
    assert await store.inbox_mark(99999, "replied") is False
    with pytest.raises(ValueError):
        await store.inbox_mark(b, "sent")


@pytest.mark.asyncio
async def test_inbox_counts_empty(store):
    assert await store.inbox_counts() == dict.fromkeys(INBOX_STATES, 0)


@pytest.mark.asyncio
async def test_inbox_survives_reopen(tmp_path):
    path = tmp_path / "exoclaw.db"
    store = SQLiteStore(path)
    done, _ = await store.inbox_add("telegram", "1", msg())
    await store.inbox_add("telegram", "2", msg("still waiting"))
    await store.inbox_mark(done, "replied", reply_status=200)
    store.close()
    reopened = SQLiteStore(path)
    try:
        assert [p.message.content for p in await reopened.inbox_pending()] == ["still waiting"]
        assert await reopened.inbox_add("telegram", "1", msg()) == (done, False)
    finally:
        reopened.close()

