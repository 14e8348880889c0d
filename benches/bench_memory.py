"""Memory (SPEC §9): how long recall, context assembly and ingest take as the history grows.

Run: ``python -m pytest benches/bench_memory.py -s`` (``-s`` prints the figures).

On a real SQLite file (WAL), awaited inside a running event loop so the hops
to the store's thread are included, for one person whose session holds 50,
1,000 or 10,000 turns of varied everyday talk (plus 1,000 facts):

* ``test_recall_search[...]`` — the recall layer's store work for a question:
  the full-text search (100 hits) and the neighbours of the best 50.
  Target: median < 5 ms at 10⁴ turns.
* ``test_assemble_context[...]`` — one turn's context as the agent loop
  builds it: ``assemble_context`` through the hook bridge with the four
  builtin memory plugins (soul from a real file, semantic facts, episodic
  window of 5, recall) and ``build_context`` into 4,000 tokens.
  Target: median ≤ 10 ms at 10⁴ turns.
* ``test_ingest[...]`` — one turn stored (``append_turn``: the turn, its
  messages, their full-text index) and learned from (``after_turn`` of the
  semantic plugin, the offline extractor). Target: median ≤ 5 ms at 10⁴ turns.
* ``test_turn_50_fact`` — a 50-turn chat through a real gateway (echo
  provider): the fact said at turn 5 ("turn 5: remember that my dog's name is
  Luna", a group chat's prefix included) reaches the model at turn 50, in a
  context within the budget.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from typing import Any

import pytest

from builtin_plugins.memory.episodic import EpisodicPlugin
from builtin_plugins.memory.recall import RecallPlugin, meaningful
from builtin_plugins.memory.semantic import SemanticPlugin
from builtin_plugins.memory.settings import MemoryConfig
from builtin_plugins.memory.soul import SoulPlugin
from builtin_plugins.memory.vocab import storage_fact
from exoclaw_core import hookcall
from exoclaw_core.agent.context import build_context
from exoclaw_core.config import Settings
from exoclaw_core.plugins import make_plugin_manager
from exoclaw_core.store import SQLiteStore
from exoclaw_hooks import (
    AgentConfig,
    CompletedTurn,
    ContextRequest,
    Fact,
    IncomingMessage,
    LLMRequest,
    Message,
    Route,
    Usage,
    hookimpl,
)
from exoclaw_hooks.testing import tables_of

SIZES = [50, 1_000, 10_000]
TARGETS_MS = {"recall": 5.0, "assemble": 10.0, "ingest": 5.0}
N_FACTS = 1000
PERSON = "default:test:alice"
SESSION = PERSON + ":main"
RESULTS: dict[str, str] = {}
QUESTIONS = ["what's my dog's name?", "when did I go hiking with my sister last?",
             "which restaurant did we like in Lisbon?", "remind me what the doctor said about my knee"]
SOUL = (
    "# Claw\n\nYou are Claw, a warm and concise personal assistant. Answer in one or two sentences unless "
    "asked for more. Use what you remember about the person naturally; never invent facts. "
) * 3

CITIES = ["Paris", "Berlin", "Lisbon", "Oslo", "Rome", "Madrid", "Vienna", "Prague", "Dublin", "Athens"]
FOODS = ["sushi", "pizza", "ramen", "tacos", "curry", "pasta", "falafel", "paella", "dumplings", "pho"]
PEOPLE = ["my sister", "my brother", "Tom", "Anna", "my boss", "the neighbours", "my mum", "Luis", "Priya"]
DOINGS = ["went hiking", "had dinner", "watched a film", "fixed the bike", "painted the kitchen",
          "went to the doctor", "played tennis", "baked bread", "visited the museum", "walked the dog"]
WHEN = ["yesterday", "last weekend", "this morning", "on Friday", "two weeks ago", "last night"]
FEELINGS = ["it was lovely", "I'm exhausted", "honestly a bit boring", "we laughed a lot", "my knee hurts again"]


def sentence(rng: random.Random) -> str:
    return (f"{rng.choice(['Hey!', 'So', 'Guess what:', 'Btw', ''])} I {rng.choice(DOINGS)} with "
            f"{rng.choice(PEOPLE)} in {rng.choice(CITIES)} {rng.choice(WHEN)}, we had {rng.choice(FOODS)} and "
            f"{rng.choice(FEELINGS)}.").strip()


def thousand_facts() -> list[Fact]:
    rng = random.Random(7)
    facts = [Fact("user's dog", "name", "Luna"), Fact("user", "lives_in", "Berlin")]
    i = 0
    while len(facts) < N_FACTS:
        i += 1
        who = f"user's friend {i}"
        facts += [Fact(who, "name", f"Friend{i}"), Fact(who, "lives_in", rng.choice(CITIES)),
                  Fact("user", "likes", f"{rng.choice(FOODS)} variant {i}")]
    return [storage_fact(f) for f in facts[:N_FACTS]]


async def fill(store: SQLiteStore, turns: int) -> None:
    rng = random.Random(turns)
    for f in thousand_facts():
        await store.add_fact(PERSON, f)
    for n in range(1, turns + 1):
        await store.append_turn(SESSION, "default", [Message("user", sentence(rng)),
                                                     Message("assistant", f"That sounds {rng.choice(FEELINGS)}!")], 40)


@pytest.fixture(scope="module", autouse=True)
def summary():
    yield
    if RESULTS:
        print()
        for name, text in RESULTS.items():
            print(f"{name:34s} {text}")


def measured(loop: asyncio.AbstractEventLoop, make: Any, rounds: int = 200) -> list[float]:
    samples = []
    for i in range(rounds + 10):
        t0 = time.perf_counter()
        loop.run_until_complete(make(i))
        if i >= 10:  # warm-up
            samples.append((time.perf_counter() - t0) * 1000)
    return samples


def report(kind: str, turns: int, samples: list[float], extra: str = "") -> float:
    median = statistics.median(samples)
    p90 = sorted(samples)[int(len(samples) * 0.9)]
    RESULTS[f"{kind}, {turns:>6,} turns"] = (
        f"median {median:.2f} ms  p90 {p90:.2f} ms{extra}  (target ≤ {TARGETS_MS[kind]:g} ms at 10⁴ turns)")
    return median


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """A store per size, filled once for the module."""
    stores: dict[int, SQLiteStore] = {}
    loop = asyncio.new_event_loop()
    for turns in SIZES:
        store = SQLiteStore(tmp_path_factory.mktemp(f"s{turns}") / "exoclaw.db")
        loop.run_until_complete(fill(store, turns))
        stores[turns] = store
    yield loop, stores
    for store in stores.values():
        store.close()
    loop.close()


@pytest.mark.parametrize("turns", SIZES)
def test_recall_search(filled, turns):
    loop, stores = filled
    store = stores[turns]

    async def one(i: int) -> None:
        hits = await store.search_messages(PERSON, meaningful(QUESTIONS[i % 4]), limit=100,
                                           skip_session=SESSION, skip_last_turns=5)
        await store.messages_near([m.id for m, _ in hits[:50]], 4, 4)

    report("recall", turns, measured(loop, one))


@pytest.mark.parametrize("turns", SIZES)
def test_assemble_context(filled, tmp_path, turns):
    loop, stores = filled
    soul = tmp_path / "soul.md"
    soul.write_text(SOUL)
    agent = AgentConfig("default", "echo", "echo", system_prompt="You are a helpful assistant.", soul_path=str(soul))
    plugins = [SoulPlugin(), SemanticPlugin(), EpisodicPlugin(), RecallPlugin()]
    for p in plugins[1:]:
        tables_of(p)["memory"].apply(MemoryConfig())
    pm = make_plugin_manager(Settings(), load_entrypoints=False, plugins=[(type(p).__name__, p) for p in plugins])
    store = stores[turns]
    sizes: list[int] = []

    async def one(i: int) -> None:
        message = IncomingMessage("test", "alice", QUESTIONS[i % 4])
        request = ContextRequest(agent, Route("default", SESSION), message, PERSON, store)
        results = await hookcall.call_all(pm, "assemble_context", concurrent=True, request=request)
        parts = [p for r in results for p in r]
        ctx = build_context(agent, message, parts, 4000, MemoryConfig().shares)
        sizes.append(ctx.tokens)

    samples = measured(loop, one)
    report("assemble", turns, samples, f"  (context {statistics.median(sizes):.0f} tokens)")


@pytest.mark.parametrize("turns", SIZES)
def test_ingest(filled, turns):
    loop, stores = filled
    store = stores[turns]
    semantic = SemanticPlugin()
    tables_of(semantic)["memory"].apply(MemoryConfig(extractor="rules"))
    agent = AgentConfig("default", "echo", "echo")
    rng = random.Random(1)

    async def one(i: int) -> None:
        text = sentence(rng) + (" My cat is called Mochi." if i % 10 == 0 else "")
        turn = await store.append_turn(SESSION, "default", [Message("user", text), Message("assistant", "Nice!")], 40)
        await semantic.after_turn(CompletedTurn(agent, Route("default", SESSION), IncomingMessage("test", "alice", text),
                                                PERSON, turn, "Nice!", Usage(), store))

    report("ingest", turns, measured(loop, one))


class Recorder:
    def __init__(self) -> None:
        self.requests: list[LLMRequest] = []

    @hookimpl
    def before_llm_call(self, call):
        self.requests.append(call.request)


async def test_turn_50_fact(tmp_path):
    from tests.harness import make_settings, running_gateway

    agent = AgentConfig("default", "echo", "echo", system_prompt="You are a helpful assistant.",
                        options={"chunk_delay_s": 0})
    settings = make_settings(data_dir=tmp_path, agents=[agent], memory={"extractor": "rules"})
    recorder = Recorder()
    rng = random.Random(50)
    async with running_gateway(settings, plugins=[("recorder", recorder)]) as gw:
        async with gw.client() as c:
            for i in range(1, 51):
                content = ("turn 5: remember that my dog's name is Luna" if i == 5
                           else "what's my dog's name?" if i == 50 else f"turn {i}: {sentence(rng)}")
                frames = await c.chat({"channel": "test", "account": "alice", "content": content})
                assert frames[-1]["event"] == "done"
                context = frames[-2]["data"]["context"]
    turn50 = recorder.requests[-1]
    assert "Luna" in turn50.system
    RESULTS["turn-50 fact"] = f"present; context {sum(context.values())} tokens by section {context}"
