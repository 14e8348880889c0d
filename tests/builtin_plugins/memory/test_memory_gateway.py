"""The three memory layers through a real gateway (entry-point plugins, real store, real WebSocket).

What the model is sent is read from a :class:`ScriptedProvider`'s history or
from a ``before_llm_call`` recorder; the echo provider's closing note
(``[echo: N messages, C characters of context]``) shows the same from the
user's side.
"""

from __future__ import annotations

import re

from exoclaw_hooks import Fact, hookimpl
from exoclaw_hooks.testing import Script, ScriptedProvider
from tests.builtin_plugins.memory.memory_helpers import (
    SESSION,
    Recorder,
    Scripted,
    chat,
    memory_settings,
    request_chars,
    wait_for_facts,
)
from tests.harness import running_gateway, text_of

SOUL = (
    "# Claw\n\nYou are Claw, a warm and concise personal assistant. Answer in one or two sentences "
    "unless asked for more. Use what you remember about the person naturally; never invent facts."
)


def filler(i: int) -> str:
    return f"Give me one quick idea for a snack, number {i}."


async def test_fifty_turns_the_fact_from_turn_5_reaches_turn_50_in_a_small_context(tmp_path):
    soul = tmp_path / "soul.md"
    soul.write_text(SOUL)
    provider = ScriptedProvider()
    provider.enqueue(*[Script(text=[f"Sure, here is idea {i}: apple slices with peanut butter."])
                       for i in range(1, 51)])
    settings = memory_settings(tmp_path, soul=str(soul), provider="scripted", episodic_window=5, context_tokens=4000)
    async with running_gateway(settings, plugins=[("scripted", Scripted(provider))]) as gw:
        async with gw.client() as c:
            for i in range(1, 51):
                content = "my dog's name is Luna" if i == 5 else "what's my dog's name?" if i == 50 else filler(i)
                frames = await c.chat(chat(content))
                assert frames[-1]["event"] == "done", frames
            history = (await c.request("chat.history", {"session": SESSION}))["result"]
    last = provider.history[-1]
    assert "Luna" in last.system
    assert "the user's dog's name is Luna" in last.system
    assert last.system.startswith("# Claw")  # the soul first
    # the window (5 whole turns) and the new message, nothing older
    assert [m.role for m in last.messages] == ["user", "assistant"] * 5 + ["user"]
    assert last.messages[0].content == filler(45) and last.messages[-1].content == "what's my dog's name?"
    context_chars = request_chars(last)
    # the request a full-history gateway would send: soul + every earlier message + the new one
    full_chars = len(SOUL) + sum(len(m["content"]) for m in history[:-2]) + len("what's my dog's name?")
    assert context_chars / 4 < 5000
    assert full_chars / context_chars >= 4, (full_chars, context_chars)


async def test_fifty_turns_with_the_echo_provider_as_a_new_user_would(tmp_path):
    recorder = Recorder()
    settings = memory_settings(tmp_path, episodic_window=5)
    async with running_gateway(settings, plugins=[("recorder", recorder)]) as gw:
        async with gw.client() as c:
            for i in range(1, 51):
                content = "my dog's name is Luna" if i == 5 else "what's my dog's name?" if i == 50 else filler(i)
                frames = await c.chat(chat(content))
    reply = text_of(frames)
    note = re.search(r"\[echo: (\d+) messages, (\d+) characters of context\]$", reply)
    assert note, reply
    messages, chars = int(note.group(1)), int(note.group(2))
    assert messages == 11  # 5 turns of 2 messages + the question
    assert chars < 2000
    assert "Luna" in recorder.requests[-1].system


async def test_moving_supersedes_the_old_home_and_search_shows_both_with_their_times(tmp_path):
    recorder = Recorder()
    async with running_gateway(memory_settings(tmp_path), plugins=[("recorder", recorder)]) as gw:
        async with gw.client() as c:
            await c.chat(chat("I live in Paris"))
            await c.chat(chat(filler(2)))
            await c.chat(chat("I moved to Berlin"))
            await c.chat(chat("where's home these days?"))
            current = (await c.request("memory.search", {"query": "lives", "session": SESSION}))["result"]
            both = await c.request("memory.search", {"query": "lives", "session": SESSION, "include_superseded": True})
    system = recorder.requests[-1].system
    assert "the user lives in Berlin" in system
    assert "the user lives in Paris" not in system
    assert "the user moved from Paris" in system  # kept as history, not as the current home
    assert [(f["predicate"], f["object"]) for f in current] == [("lives_in", "Berlin")]
    facts = {f["object"]: f for f in both["result"]}
    assert set(facts) == {"Paris", "Berlin"}
    paris, berlin = facts["Paris"], facts["Berlin"]
    assert paris["superseded_at"] is not None and paris["superseded_by"] == berlin["id"]
    assert berlin["superseded_at"] is None and berlin["superseded_by"] is None
    assert paris["learned_at"] <= paris["superseded_at"] and paris["learned_at"] <= berlin["learned_at"]
    fields = {"subject", "predicate", "object", "learned_at", "confidence", "superseded_at", "superseded_by"}
    assert set(paris) >= fields
    assert paris["subject"] == "user" and paris["confidence"] == 0.9


async def test_facts_follow_the_person_into_other_sessions_but_not_to_other_accounts(tmp_path):
    recorder = Recorder()
    async with running_gateway(memory_settings(tmp_path), plugins=[("recorder", recorder)]) as gw:
        async with gw.client() as c:
            await c.chat(chat("my dog's name is Luna", peer="main"))
            assert await wait_for_facts(c, {"query": "dog", "session": SESSION})
            await c.chat(chat("what's my dog's name?", peer="phone"))
            other_peer = recorder.requests[-1]
            await c.chat(chat("what's my dog's name?", account="bob"))
            other_account = recorder.requests[-1]
            alice_phone = {"query": "dog", "session": "default:test:alice:phone"}
            alice = (await c.request("memory.search", alice_phone))["result"]
            bob = (await c.request("memory.search", {"query": "dog", "session": "default:test:bob:main"}))["result"]
            everyone = (await c.request("memory.search", {"query": "dog"}))["result"]
    assert "Luna" in other_peer.system
    assert [m.content for m in other_peer.messages] == ["what's my dog's name?"]  # a new session: no window
    assert "Luna" not in other_account.system
    assert [f["object"] for f in alice] == ["Luna"] and bob == []
    assert [(f["object"], f["person"]) for f in everyone] == [("Luna", "default:test:alice")]


async def test_a_person_never_heard_from_gets_the_soul_and_the_message_only(tmp_path):
    soul = tmp_path / "soul.md"
    soul.write_text(SOUL + "\n")
    recorder = Recorder()
    async with running_gateway(memory_settings(tmp_path, soul=str(soul)), plugins=[("recorder", recorder)]) as gw:
        async with gw.client() as c:
            await c.chat(chat("I live in Paris and my dog's name is Luna"))  # someone else's facts
            assert await wait_for_facts(c, {"query": "dog", "session": SESSION})
            await c.chat(chat("hello, what's my dog's name and where do I live?", account="carol"))
    fresh = recorder.requests[-1]
    assert fresh.system == SOUL
    assert [(m.role, m.content) for m in fresh.messages] == [
        ("user", "hello, what's my dog's name and where do I live?")
    ]


async def test_soul_is_reloaded_when_the_file_changes(tmp_path):
    import os

    soul = tmp_path / "soul.md"
    soul.write_text("You are Claw, version one.")
    recorder = Recorder()
    async with running_gateway(memory_settings(tmp_path, soul=str(soul)), plugins=[("recorder", recorder)]) as gw:
        async with gw.client() as c:
            await c.chat(chat("hi"))
            soul.write_text("You are Claw, version two!")  # same size: only the mtime tells
            st = os.stat(soul)
            os.utime(soul, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
            await c.chat(chat("hi again"))
            await c.chat(chat("and again"))
    systems = [r.system for r in recorder.requests]
    assert systems == ["You are Claw, version one.", "You are Claw, version two!", "You are Claw, version two!"]


async def test_a_missing_soul_file_warns_once_and_the_turns_go_on(tmp_path, caplog):
    recorder = Recorder()
    settings = memory_settings(tmp_path, soul=str(tmp_path / "nope.md"))
    with caplog.at_level("WARNING", logger="exoclaw.memory"):
        async with running_gateway(settings, plugins=[("recorder", recorder)]) as gw:
            async with gw.client() as c:
                for i in range(3):
                    frames = await c.chat(chat(f"hello {i}"))
                    assert frames[-1]["event"] == "done" and "error" not in [f.get("event") for f in frames]
    warnings = [r for r in caplog.records if "soul_missing" in r.getMessage()]
    assert len(warnings) == 1 and "nope.md" in warnings[0].getMessage()
    assert [r.system for r in recorder.requests] == ["", "", ""]


async def test_semantic_disabled_learns_and_retrieves_nothing(tmp_path):
    recorder = Recorder()
    settings = memory_settings(tmp_path, semantic_enabled=False, episodic_window=0)
    async with running_gateway(settings, plugins=[("recorder", recorder)]) as gw:
        async with gw.client() as c:
            await c.chat(chat("my dog's name is Luna"))
            await c.chat(chat("what's my dog's name?"))
            found = (await c.request("memory.search", {"query": "dog Luna", "session": SESSION}))["result"]
    assert found == []
    system = recorder.requests[-1].system
    assert "What you remember" not in system  # no facts section
    # what was said is still recalled from the record: the raw history is the truth, facts only an index
    assert "Earlier conversation" in system and "my dog's name is Luna" in system
    assert [m.content for m in recorder.requests[-1].messages] == ["what's my dog's name?"]  # window 0


async def test_the_window_never_splits_a_tool_exchange(tmp_path):
    recorder = Recorder()
    # small enough that whole turns must be dropped from the window
    settings = memory_settings(tmp_path, episodic_window=3, context_tokens=120)
    async with running_gateway(settings, plugins=[("recorder", recorder)]) as gw:
        async with gw.client() as c:
            for i in range(6):
                await c.chat(chat(f"/tool nothing {{\"n\": {i}}}" if i % 2 == 0 else f"plain message {i} " + "x" * 80))
    assert len(recorder.requests) > 6
    saw_tool_turn = False
    for request in recorder.requests:
        msgs = request.messages
        assert msgs[0].role == "user"
        for k, m in enumerate(msgs):
            if m.role == "tool":
                saw_tool_turn = True
                prev = msgs[k - 1]
                assert prev.role == "assistant"
                assert {r.tool_use_id for r in m.tool_results} <= {t.id for t in prev.tool_calls}
            if m.role == "assistant" and m.tool_calls:
                assert msgs[k + 1].role == "tool"
    assert saw_tool_turn
    # the first call of the last turn: its window was trimmed to fit, by whole turns
    first_calls = [r for r in recorder.requests if r.messages[-1].role == "user"]
    assert any(len(r.messages) < 2 * 3 + 1 for r in first_calls[3:])


async def test_memory_search_never_fails_on_hostile_queries(tmp_path):
    hostile = [
        '"', '""', "'", "AND", "OR", "NOT", "a AND b", "NEAR(", "NEAR(a b", "*", "Lu*", "(((", ")", "a)",
        "^", "-", "subject:Luna", "{subject}: x", "\\", "%", "_", "'; DROP TABLE facts; --", "\x00", "é☃🙂",
        "dog" * 2000, " ".join(f"w{i}" for i in range(500)), "", "   ", "?!", "luna\"", "name:", "+",
    ]
    async with running_gateway(memory_settings(tmp_path)) as gw:
        async with gw.client() as c:
            await c.chat(chat("my dog's name is Luna"))
            await wait_for_facts(c, {"query": "dog"})
            for query in hostile:
                for params in ({"query": query}, {"query": query, "session": SESSION, "include_superseded": True}):
                    reply = await c.request("memory.search", params)
                    assert reply["error"] is None, (query, reply)
                    assert isinstance(reply["result"], list)
            assert (await c.request("memory.search", {"query": ""}))["result"] == []
            found = (await c.request("memory.search", {"query": 'Luna") OR *'}))["result"]
            assert [f["object"] for f in found] == ["Luna"]
            # stemming: "dogs" finds "dog"
            assert [f["object"] for f in (await c.request("memory.search", {"query": "dogs"}))["result"]] == ["Luna"]


async def test_memory_search_rejects_bad_params_with_their_names(tmp_path):
    async with running_gateway(memory_settings(tmp_path)) as gw:
        async with gw.client() as c:
            cases = [
                ({}, "invalid params: query: required"),
                ({"query": 5}, "invalid params: query: must be a string"),
                ({"query": "x", "session": 3}, "invalid params: session: must be a string"),
                ({"query": "x", "session": "nope"},
                 "invalid params: session: must be a session key agent:channel:account:peer"),
                ({"query": "x", "include_superseded": "yes"}, "invalid params: include_superseded: must be a boolean"),
                ({"query": "x", "limit": 0}, "invalid params: limit: must be an integer from 1 to 1000"),
            ]
            for params, error in cases:
                reply = await c.request("memory.search", params)
                assert reply["error"] == error and reply["result"] is None


class ShoutingExtractor:
    """A third-party extractor: every message yields one fact, none of what the offline one would find."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    @hookimpl
    def extract_facts(self, text, message, known):
        self.calls.append((text, len(known)))
        return [Fact("user", "last_words", text.upper())]


async def test_an_extractor_plugin_replaces_the_offline_one(tmp_path):
    extractor = ShoutingExtractor()
    async with running_gateway(memory_settings(tmp_path), plugins=[("shouting", extractor)]) as gw:
        async with gw.client() as c:
            await c.chat(chat("my dog's name is Luna"))
            await c.chat(chat("i live in rome"))
            await wait_for_facts(c, {"query": "ROME"})
            facts = await c.request("memory.search", {"query": "last words luna rome dog", "include_superseded": True})
    assert extractor.calls == [("my dog's name is Luna", 0), ("i live in rome", 1)]
    assert sorted(f["object"] for f in facts["result"]) == ["I LIVE IN ROME", "MY DOG'S NAME IS LUNA"]
