"""The soul and episodic layers on their own: caching, reloading, warnings, windows."""

from __future__ import annotations

import logging
import os

from builtin_plugins.memory.episodic import EpisodicPlugin
from builtin_plugins.memory.soul import SoulPlugin
from exoclaw_core.store import SQLiteStore
from exoclaw_hooks import AgentConfig, ContextRequest, IncomingMessage, Message, Route, ToolCall, ToolResult
from builtin_plugins.memory.settings import MemoryConfig
from exoclaw_hooks.testing import tables_of

SESSION = "default:test:alice:main"


def request(soul_path=None, store=None):
    return ContextRequest(
        AgentConfig("default", "echo", "echo", soul_path=soul_path), Route("default", SESSION),
        IncomingMessage("test", "alice", "hi"), "default:test:alice", store,
    )


def with_window(plugin, window):
    tables_of(plugin)["memory"].apply(MemoryConfig(episodic_window=window))  # [memory] episodic_window
    return plugin


def bump_mtime(path, seconds=2):
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + seconds * 1_000_000_000))


# ---------------------------------------------------------------- soul


async def test_soul_is_read_once_and_counted_once_per_load(tmp_path):
    path = tmp_path / "soul.md"
    path.write_text("\ufeff  You are Claw.\n\n")
    plugin = SoulPlugin()
    for _ in range(5):
        (part,) = await plugin.assemble_context(request(str(path)))
        assert (part.kind, part.text, part.tokens) == ("soul", "You are Claw.", 4)
    assert plugin.loads == 1


async def test_soul_reloads_on_a_new_mtime_or_size_only(tmp_path):
    path = tmp_path / "soul.md"
    path.write_text("version one")
    plugin = SoulPlugin()
    assert (await plugin.assemble_context(request(str(path))))[0].text == "version one"
    path.write_text("version two")  # same size
    bump_mtime(path)
    assert (await plugin.assemble_context(request(str(path))))[0].text == "version two"
    path.write_text("version three, longer")
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, os.stat(path).st_mtime_ns))  # even with an unchanged mtime: size differs
    assert (await plugin.assemble_context(request(str(path))))[0].text == "version three, longer"
    assert (await plugin.assemble_context(request(str(path))))[0].tokens == 6
    assert plugin.loads == 3


async def test_missing_soul_warns_once_until_it_comes_back(tmp_path, caplog):
    path = tmp_path / "soul.md"
    plugin = SoulPlugin()
    with caplog.at_level(logging.WARNING, logger="exoclaw.memory"):
        for _ in range(3):
            assert await plugin.assemble_context(request(str(path))) == []
        path.write_text("back")
        assert (await plugin.assemble_context(request(str(path))))[0].text == "back"
        path.unlink()
        assert await plugin.assemble_context(request(str(path))) == []
        assert await plugin.assemble_context(request(str(path))) == []
    missing = [r for r in caplog.records if "soul_missing" in r.getMessage()]
    assert len(missing) == 2  # once, and once more after it had come back and gone again


async def test_unreadable_soul_warns_once_and_contributes_nothing(tmp_path, caplog):
    directory = tmp_path / "soul_dir"
    directory.mkdir()
    binary = tmp_path / "soul.bin"
    binary.write_bytes(b"\xff\xfe\x00bad")
    plugin = SoulPlugin()
    with caplog.at_level(logging.WARNING, logger="exoclaw.memory"):
        for _ in range(2):
            assert await plugin.assemble_context(request(str(directory))) == []
            assert await plugin.assemble_context(request(str(binary))) == []
    unreadable = [r.getMessage() for r in caplog.records if "soul_unreadable" in r.getMessage()]
    assert len(unreadable) == 2
    assert any("not UTF-8" in m for m in unreadable)


async def test_no_soul_path_no_part_and_empty_soul_no_part(tmp_path):
    plugin = SoulPlugin()
    assert await plugin.assemble_context(request(None)) is None
    empty = tmp_path / "empty.md"
    empty.write_text("  \n")
    assert await plugin.assemble_context(request(str(empty))) == []


# ---------------------------------------------------------------- episodic


async def test_window_is_the_last_whole_turns_oldest_first():
    store = SQLiteStore(None)
    try:
        for i in range(1, 8):
            msgs = [Message("user", f"u{i}")]
            if i == 5:  # a tool exchange inside one turn
                msgs += [
                    Message("assistant", "", tool_calls=(ToolCall("t1", "echo", {"x": 1}),)),
                    Message("tool", tool_results=(ToolResult("t1", "1"),)),
                ]
            msgs.append(Message("assistant", f"a{i}"))
            await store.append_turn(SESSION, "default", msgs, 10)
        plugin = with_window(EpisodicPlugin(), 3)
        parts = await plugin.assemble_context(request(store=store))
        assert [p.kind for p in parts] == ["turn"] * 3
        assert [p.turn.seq for p in parts] == [5, 6, 7]
        assert [m.role for m in parts[0].turn.messages] == ["user", "assistant", "tool", "assistant"]
        assert await with_window(plugin, 0).assemble_context(request(store=store)) is None
        assert len(await with_window(plugin, 50).assemble_context(request(store=store))) == 7
    finally:
        store.close()
