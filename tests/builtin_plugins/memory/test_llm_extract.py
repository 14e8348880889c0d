"""The LLM extractor: its prompt, its parsing (garbage included), batching, and a real gateway around it."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from builtin_plugins.memory.llm_extract import build_request, parse_reply
from exoclaw_hooks import BudgetExceeded, CompletedTurn, Fact, IncomingMessage, Message, Route, Turn, Usage, hookimpl
from exoclaw_hooks.testing import Script, ScriptedProvider
from tests.builtin_plugins.memory.memory_helpers import SESSION, Recorder, Scripted, chat, memory_settings
from tests.harness import running_gateway, text_of

PERSON = "default:test:alice"


def turn(text: str, reply: str, when: str) -> CompletedTurn:
    from exoclaw_hooks import AgentConfig

    messages = (Message("user", text), Message("assistant", reply))
    return CompletedTurn(AgentConfig("default", "scripted", "m1"), Route("default", SESSION),
                         IncomingMessage("test", "alice", text), PERSON, Turn(messages, 1, when), reply, Usage(), None)


def answer(*facts: dict) -> str:
    return json.dumps({"facts": list(facts)})


# ---------------------------------------------------------------- the prompt


def test_the_prompt_has_what_the_person_said_with_its_time_and_the_known_facts_never_the_replies():
    turns = [turn("We adopted a cat yesterday!", "How lovely! I remember you live in Paris.", "2023-05-08T13:56:00Z")]
    known = [Fact("user", "lives_in", "Paris", id=7)]
    request = build_request(turns, known, "cheap-model")
    prompt = request.messages[0].content
    assert '[1] (2023-05-08T13:56:00Z) "We adopted a cat yesterday!"' in prompt
    assert "#7: the user lives in Paris" in prompt
    assert "How lovely" not in prompt  # the assistant's words are never the person's facts
    assert "absolute" in request.system and "supersedes" in request.system and "Never delete" in request.system
    assert request.model == "cheap-model"


# ---------------------------------------------------------------- parsing


def test_a_fenced_answer_parses_and_unknown_ids_and_bad_items_are_dropped():
    text = "Here you go:\n```json\n" + answer(
        {"subject": "user", "predicate": "Lives In", "object": "Berlin", "supersedes": 7, "turns": [1, 9]},
        {"subject": "user", "predicate": "has", "object": "a cat", "supersedes": 99},
        {"subject": "", "predicate": "x", "object": "y"},
        {"subject": "user", "predicate": 3, "object": "y"},
        "not a fact",
    ) + "\n```"
    found = parse_reply(text, known_ids={7}, n_turns=1)
    assert [(f.fact.predicate, f.fact.object, f.supersedes, f.turns) for f in found] == [
        ("lives_in", "Berlin", 7, (1,)), ("has", "a cat", None, ()),
    ]


@pytest.mark.parametrize("garbage", ["I could not find any facts.", "{not json}", '{"facts": 3}', "[1, 2]", ""])
def test_garbage_is_an_error_not_facts(garbage):
    with pytest.raises(ValueError):
        parse_reply(garbage, set(), 1)


# ---------------------------------------------------------------- in a real gateway


class Refuser:
    """Refuses every memory call, as an exhausted budget would."""

    @hookimpl
    def before_llm_call(self, call):
        if call.kind == "memory":
            raise BudgetExceeded("daily", 100, 100)


def llm_settings(tmp_path, **memory):
    return memory_settings(tmp_path, provider="scripted", extractor="llm", llm_batch_turns=2, **memory)


async def test_a_batch_is_one_memory_call_and_its_facts_are_stored_and_superseded(tmp_path):
    provider, recorder = ScriptedProvider(), Recorder()
    provider.enqueue(
        Script(text=["ok"]), Script(text=["ok"]),  # the two turns
        Script(text=[answer({"subject": "user", "predicate": "lives_in", "object": "Paris", "turns": [1]})]),
        Script(text=["ok"]), Script(text=["ok"]),
        Script(text=[answer({"subject": "user", "predicate": "city", "object": "Berlin", "supersedes": 1,
                             "turns": [2]})]),
    )
    plugins = [("scripted", Scripted(provider)), ("recorder", recorder)]
    async with running_gateway(llm_settings(tmp_path), plugins=plugins) as gw:
        async with gw.client() as c:
            for text in ("I live in Paris", "nice weather", "hello again", "I moved to Berlin"):
                frames = await c.chat(chat(text))
                assert text_of(frames) == "ok"  # the turn never waits for learning
            facts = (await c.request("memory.search", {"query": "Paris Berlin", "session": SESSION,
                                                       "include_superseded": True}))["result"]
    kinds = [r for r in provider.history if "long-term memory" in r.system]
    assert len(kinds) == 2 and len(provider.history) == 6  # one call per batch of two turns
    by_object = {f["object"]: f for f in facts}
    assert by_object["Paris"]["superseded_by"] == by_object["Berlin"]["id"]  # marked, kept
    assert by_object["Berlin"]["superseded_at"] is None


async def test_garbage_from_the_model_stores_nothing_and_is_logged(tmp_path, caplog):
    provider = ScriptedProvider()
    provider.enqueue(Script(text=["ok"]), Script(text=["ok"]), Script(text=["Sure! The user likes cats."]))
    async with running_gateway(llm_settings(tmp_path), plugins=[("scripted", Scripted(provider))]) as gw:
        async with gw.client() as c:
            with caplog.at_level(logging.WARNING):
                await c.chat(chat("my dog's name is Luna"))
                await c.chat(chat("ok"))
            facts = (await c.request("memory.search", {"query": "Luna dog", "session": SESSION}))["result"]
    assert facts == []
    assert "event=extractor_garbage extractor=llm" in caplog.text


async def test_a_refused_memory_call_learns_the_batch_offline_and_the_turns_are_fine(tmp_path, caplog):
    provider = ScriptedProvider()
    provider.enqueue(Script(text=["ok"]), Script(text=["ok"]))
    plugins = [("scripted", Scripted(provider)), ("refuser", Refuser())]
    async with running_gateway(llm_settings(tmp_path), plugins=plugins) as gw:
        async with gw.client() as c:
            with caplog.at_level(logging.WARNING):
                assert text_of(await c.chat(chat("my dog's name is Luna"))) == "ok"
                assert text_of(await c.chat(chat("thanks"))) == "ok"
            facts = (await c.request("memory.search", {"query": "dog name", "session": SESSION}))["result"]
    assert [f["object"] for f in facts] == ["Luna"]  # the rules learned it instead
    assert "event=extractor_failed extractor=llm" in caplog.text
    assert len(provider.history) == 2  # the refused call never reached the provider


async def test_a_slow_extractor_never_delays_the_next_turn(tmp_path):
    provider, gate = ScriptedProvider(), asyncio.Event()
    provider.enqueue(Script(text=["one"]), Script(text=["two"]), Script(text=[answer()], gate=gate),
                     Script(text=["three"]))
    async with running_gateway(llm_settings(tmp_path), plugins=[("scripted", Scripted(provider))]) as gw:
        async with gw.client() as c:
            c.settle = None  # do not wait for learning: it hangs on the gate
            await c.chat(chat("a"))
            await c.chat(chat("b"))  # the batch is full: the memory call starts and hangs
            frames = await asyncio.wait_for(c.chat(chat("c")), 5)
            gate.set()
    assert text_of(frames) == "three"


async def test_a_quiet_person_s_smaller_batch_is_learned_after_the_idle_time(tmp_path):
    provider = ScriptedProvider()
    provider.enqueue(Script(text=["ok"]), Script(text=[answer(
        {"subject": "user's dog", "predicate": "name", "object": "Luna", "turns": [1]})]))
    settings = memory_settings(tmp_path, provider="scripted", extractor="llm", llm_batch_turns=5, llm_idle_s=0.2)
    async with running_gateway(settings, plugins=[("scripted", Scripted(provider))]) as gw:
        async with gw.client() as c:
            await c.chat(chat("our dog is called Luna"))
            for _ in range(100):  # the idle timer fires after 0.2 s
                facts = (await c.request("memory.search", {"query": "dog", "session": SESSION}))["result"]
                if facts:
                    break
                await asyncio.sleep(0.05)
    assert [f["object"] for f in facts] == ["Luna"] and len(provider.history) == 2
