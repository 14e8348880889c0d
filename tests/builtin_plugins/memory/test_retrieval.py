"""Retrieval: a question finds its fact even when they share no word, through the store's FTS5/bm25.

The semantic plugin is called directly with a real (in-memory) SQLite store
holding one person's facts, learned by the offline extractor from plain
sentences, plus another person's facts that must never leak in.
"""

from __future__ import annotations

import pytest

from builtin_plugins.memory.extract import extract_facts
from builtin_plugins.memory.retrieval import CUES, analyze, build_query, cues_for
from builtin_plugins.memory.semantic import SemanticPlugin
from builtin_plugins.memory.vocab import TEMPLATES, base_predicate, storage_fact
from exoclaw_core.store import SQLiteStore
from exoclaw_hooks import AgentConfig, ContextRequest, IncomingMessage, Route
from builtin_plugins.memory.settings import MemoryConfig
from exoclaw_hooks.testing import tables_of

ALICE, BOB = "default:test:alice", "default:test:bob"

SAID = [
    "I'm a nurse", "I work at the Charité", "I live in Berlin", "my dog's name is Luna", "I'm 34",
    "my birthday is March 3", "I speak French and German", "I'm learning Japanese", "I'm allergic to peanuts",
    "I love sushi", "my favourite colour is green", "my sister is called Ana", "I drive a red Volvo",
    "I was born in Lyon", "I'm vegetarian", "I have asthma", "my wife's name is Maria",
]


@pytest.fixture
async def store():
    s = SQLiteStore(None)
    for text in SAID:
        for fact in extract_facts(text):
            await s.add_fact(ALICE, storage_fact(fact))
    for fact in extract_facts("I'm a pilot and I live in Oslo. My dog is called Rex."):
        await s.add_fact(BOB, storage_fact(fact))
    yield s
    s.close()


def request(store, text, person=ALICE):
    return ContextRequest(
        AgentConfig("default", "echo", "echo"), Route("default", person + ":main"),
        IncomingMessage("test", person.split(":")[2], text), person, store,
    )


@pytest.mark.parametrize(
    "question, expected",
    [
        # no word in common with the fact
        ("what do I do for a living?", "the user's occupation is nurse"),
        ("where's home?", "the user lives in Berlin"),
        ("how old am I?", "the user is 34 years old"),
        ("when do I celebrate?", "the user's birthday is March 3"),
        ("am I allergic to anything?", "the user is allergic to peanuts"),
        ("which languages can I use when I travel?", "the user speaks "),  # French or German: a tie
        ("who is my employer?", "the user works at the Charité"),
        ("what car do I have?", "the user's car is a red Volvo"),
        ("where did I grow up?", "the user was born in Lyon"),
        # sharing a word, and with another person's similar facts in the store
        ("what's my dog's name?", "the user's dog's name is Luna"),
        ("what's my wife called?", "the user's wife's name is Maria"),
        ("when is my birthday?", "the user's birthday is March 3"),
        ("what colour should I paint my room? my favorite one!", "the user's favourite colour is green"),
    ],
)
async def test_a_question_brings_its_fact_first(store, question, expected):
    parts = await SemanticPlugin().assemble_context(request(store, question))
    assert parts, question
    assert parts[0].text.startswith("- " + expected), [p.text for p in parts]
    assert all(p.kind == "fact" and p.relevance > 0 for p in parts)
    assert [p.relevance for p in parts] == sorted((p.relevance for p in parts), reverse=True)
    assert not any("Oslo" in p.text or "Rex" in p.text or "pilot" in p.text for p in parts)  # Bob's


async def test_small_talk_brings_no_facts_and_disabled_memory_none(store):
    plugin = SemanticPlugin()
    assert await plugin.assemble_context(request(store, "hi! how are you?")) == []
    assert await plugin.assemble_context(request(store, "ok thanks")) == []
    tables_of(plugin)["memory"].apply(MemoryConfig(semantic_enabled=False))  # [memory] semantic_enabled = false
    assert await plugin.assemble_context(request(store, "what's my dog's name?")) is None


async def test_at_most_max_facts_are_offered(store):
    plugin = SemanticPlugin()
    plugin.max_facts = 3
    parts = await plugin.assemble_context(request(store, "tell me everything: name age home job dog languages food"))
    assert len(parts) == 3


def test_question_words_map_to_predicates():
    assert build_query("what do I do for a living?") == "occupation job works_at works_in"
    assert build_query("where's home?").startswith("lives_in")
    assert build_query("hi there!") == ""
    query, asked = analyze("when is my birthday?")
    assert "birthday" in asked and "birthday" in query.split()
    # the whole word a cue touches is used up: no stray "ic" from "allergic"
    assert "ic" not in build_query("am I allergic?").split()
    # relatives and pets are searched under their other names too
    assert {"mom", "mum", "mother"} <= set(build_query("how is my mom?").split())


def test_every_predicate_of_the_vocabulary_is_reachable_by_a_question():
    reachable = {w for _cues, words in CUES.values() for w in words}
    for predicate in TEMPLATES:
        if predicate in ("nickname", "surname", "address", "grew_up_in", "hometown", "born_in", "birth_year",
                         "works_in", "studies_at", "native_language", "avoids", "hobby", "owns", "location",
                         "nationality"):
            assert predicate in reachable, predicate
        else:
            assert cues_for(predicate) or predicate in reachable, predicate


async def test_retrieval_asks_the_store_not_a_python_scan(store):
    calls = []

    class Spy:
        async def search_facts(self, person_key, match, limit=20, include_superseded=False):
            calls.append((person_key, match, limit))
            return await store.search_facts(person_key, match, limit, include_superseded)

        async def list_facts(self, *a, **k):  # pragma: no cover - must not be used
            raise AssertionError("retrieval must not list every fact")

    parts = await SemanticPlugin().assemble_context(request(Spy(), "where's home?"))
    assert parts[0].text == "- the user lives in Berlin"
    assert len(calls) == 1 and calls[0][0] == ALICE


def test_stored_predicates_read_back_to_the_vocabulary():
    facts = [storage_fact(f) for text in SAID for f in extract_facts(text)]
    assert {base_predicate(f.predicate) for f in facts} >= {"occupation", "lives_in", "name", "speaks", "likes"}
    assert "likes sushi" in {f.predicate for f in facts}
