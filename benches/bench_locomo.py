"""LoCoMo evidence recall through a real gateway (the measure of ``../shared/locomo-dev/README.md``).

Run it::

    python benches/bench_locomo.py                       # the table per category, baselines beside it
    python benches/bench_locomo.py --memory context_tokens=3000 --memory episodic_window=3
    python -m pytest benches/bench_locomo.py -s          # the same, as a benchmark test

Data: ``$EXOCLAW_LOCOMO_DIR`` or ``../shared/locomo-dev`` relative to the
repository root (read there, never copied into the project); without it the
test is skipped with the reason.

How a conversation is fed (one fresh gateway per conversation):

* an in-process gateway (:func:`tests.harness.running_gateway`) with the
  builtin plugins loaded through their entry points, the ``[memory]``
  settings given on the command line / in ``$EXOCLAW_LOCOMO_MEMORY``, and
  a persistent SQLite store in a temporary directory whose clock is the
  conversation's: every message of a session is stored at that session's
  ``date_time``, as if it had been said then;
* one WebSocket ``chat.send`` per utterance, all in one session of one
  person (channel ``locomo``, account ``group``), content
  ``[<session date_time>] <speaker>: <text>``. A shared photo's
  ``blip_caption`` is appended as `` [shares a photo: <caption>]`` (what a
  channel that describes images would deliver; ``--captions off`` leaves
  it out). Evidence words come from the text alone, so a caption can only
  cost context, never earn a hit.
* the model is :class:`BenchProvider`, registered for the bench: it answers
  every conversation turn with ``OK.``.

Each question of categories 1-4 (those with evidence) is then sent as a turn
of that session with its plain text. :class:`BenchProvider` records the
request it receives (system prompt + messages: exactly what a model would
see) and fails the call with a non-retryable provider error, so the turn
fails and — by the agent loop's own rule — stores nothing and learns
nothing: every question sees the memory the conversation left. The context
is scored with :mod:`benches.locomo_measure` next to the baselines computed
on the same questions.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, AsyncIterator, Mapping, Sequence

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script
    sys.path.insert(0, str(REPO))

from benches import locomo_measure as lm  # noqa: E402
from exoclaw_core.store.sqlite import open_store  # noqa: E402
from exoclaw_hooks import (  # noqa: E402
    AgentConfig,
    LLMRequest,
    MemoryConfig,
    ProviderError,
    StreamEnd,
    StreamEvent,
    TextDelta,
    Usage,
    hookimpl,
    make_session_key,
)
from tests.harness import make_settings, running_gateway  # noqa: E402

SYSTEM_PROMPT = "You are a helpful assistant."
CHANNEL, ACCOUNT, PEER = "locomo", "group", "main"
SESSION = make_session_key("default", CHANNEL, ACCOUNT, PEER)
NOT_STORED = "bench question: recorded, not answered (nothing is stored)"


def data_path() -> Path:
    """``$EXOCLAW_LOCOMO_DIR``, else ``../shared/locomo-dev`` from the repository root (a git worktree
    one level deeper, ``wt/NAME``, finds it one level further up)."""
    if os.environ.get("EXOCLAW_LOCOMO_DIR"):
        return Path(os.environ["EXOCLAW_LOCOMO_DIR"]) / "locomo-dev.json"
    candidates = [REPO.parent / "shared" / "locomo-dev", REPO.parent.parent / "shared" / "locomo-dev"]
    root = next((c for c in candidates if c.is_dir()), candidates[0])
    return root / "locomo-dev.json"


# ---------------------------------------------------------------- the bench's provider


class BenchProvider:
    """Provider ``locomo-bench``: ``OK.`` to every conversation turn; records question turns and fails them."""

    def __init__(self) -> None:
        self.asking = False
        self.captured: list[LLMRequest] = []

    def factory(self, settings: Any) -> "BenchProvider":
        return self

    @hookimpl
    def register_providers(self, register: Any) -> None:
        register("locomo-bench", self.factory)

    async def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        if self.asking:
            self.captured.append(request)
            raise ProviderError(NOT_STORED)
        yield TextDelta("OK.")
        yield StreamEnd("end_turn", Usage(1, 1))


def request_text(request: LLMRequest) -> str:
    """What the model receives, as one text: the system prompt, then every message."""
    parts = [request.system]
    for m in request.messages:
        parts.append(m.content)
        parts.extend(r.content for r in m.tool_results)
    return "\n".join(p for p in parts if p)


# ---------------------------------------------------------------- settings from the command line


def _coerce(value: str, like: Any) -> Any:
    if isinstance(like, bool):
        return value.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(like, int):
        return int(value)
    if isinstance(like, float):
        return float(value)
    if isinstance(like, Mapping):  # "facts:0.1,recalled:0.6"
        out: dict[str, Any] = {}
        for item in filter(None, value.split(",")):
            k, _, v = item.partition(":")
            out[k.strip()] = float(v)
        return out
    return value


def memory_config(items: Sequence[str]) -> MemoryConfig:
    """``["context_tokens=3000", "shares=facts:0.1,recalled:0.6,window:0.3"]`` → a :class:`MemoryConfig`."""
    base = MemoryConfig()
    fields = {f.name for f in dataclasses.fields(MemoryConfig)}
    changes: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in fields:
            raise SystemExit(f"--memory {item!r}: expected KEY=VALUE with KEY one of {', '.join(sorted(fields))}")
        changes[key] = _coerce(value, getattr(base, key))
    return dataclasses.replace(base, **changes)


def env_memory_items() -> list[str]:
    return [i for i in os.environ.get("EXOCLAW_LOCOMO_MEMORY", "").replace(";", " ").split() if i]


# ---------------------------------------------------------------- one conversation through a gateway

_WHEN = "%I:%M %p on %d %B, %Y"


def session_time(text: str) -> dt.datetime:
    """``"1:56 pm on 8 May, 2023"`` → an aware UTC datetime."""
    return dt.datetime.strptime(" ".join(text.split()), _WHEN).replace(tzinfo=dt.timezone.utc)


@dataclasses.dataclass
class ConversationRun:
    sample_id: str
    contexts: list[str]
    feed_s: float
    ask_s: float


async def run_conversation(conv: lm.Conversation, memory: MemoryConfig, *, captions: bool = True) -> ConversationRun:
    provider = BenchProvider()
    clock_now = [dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)]
    agent = AgentConfig(id="default", provider="locomo-bench", model="bench", system_prompt=SYSTEM_PROMPT)
    with tempfile.TemporaryDirectory(prefix="locomo-") as tmp:
        settings = make_settings(data_dir=tmp, agents=[agent], memory=memory)
        store = open_store(Path(tmp), clock=lambda: clock_now[0])
        try:
            async with running_gateway(settings, plugins=[("locomo-bench", provider)], store=store) as gw:
                async with gw.client() as client:
                    t0 = time.perf_counter()
                    for u in conv.utterances:
                        clock_now[0] = session_time(u.date_time)
                        frames = await client.chat(_params(u.line(caption=captions)), timeout=60)
                        if frames[-1].get("event") != "done" or any(f.get("event") == "error" for f in frames):
                            raise RuntimeError(f"{conv.sample_id} {u.dia_id}: the turn failed: {frames}")
                    feed_s = time.perf_counter() - t0
                    stored = await store.history(SESSION)
                    if len(stored) != 2 * len(conv.utterances):
                        raise RuntimeError(f"{conv.sample_id}: {len(stored)} messages stored, not {2 * len(conv.utterances)}")
                    provider.asking = True
                    clock_now[0] = clock_now[0] + dt.timedelta(days=1)
                    contexts = []
                    t1 = time.perf_counter()
                    for q in conv.scored():
                        before = len(provider.captured)
                        await client.chat(_params(q.question), timeout=60)
                        if len(provider.captured) != before + 1:
                            raise RuntimeError(f"{conv.sample_id}: no request captured for {q.question!r}")
                        contexts.append(request_text(provider.captured[-1]))
                    ask_s = time.perf_counter() - t1
        finally:
            store.close()
    return ConversationRun(conv.sample_id, contexts, feed_s, ask_s)


def _params(content: str) -> dict[str, str]:
    return {"channel": CHANNEL, "account": ACCOUNT, "peer": PEER, "content": content}


# ---------------------------------------------------------------- the whole measure


@dataclasses.dataclass
class Report:
    tables: dict[str, dict[str, lm.Summary]]  # system -> category -> summary
    runs: list[ConversationRun]
    seconds: float


async def measure(convs: Sequence[lm.Conversation], memory: MemoryConfig, *, captions: bool = True) -> Report:
    t0 = time.perf_counter()
    results: dict[str, list[lm.Result]] = {"exoclaw": []}
    runs = []
    for conv in convs:
        texts = {u.dia_id: u.text for u in conv.utterances}
        run = await run_conversation(conv, memory, captions=captions)
        runs.append(run)
        for q, ctx in zip(conv.scored(), run.contexts):
            results["exoclaw"].append(lm.score(ctx, q, texts))
        for name, contexts in lm.baseline_contexts(conv).items():
            for q, ctx in zip(conv.scored(), contexts):
                results.setdefault(name, []).append(lm.score(ctx, q, texts))
    tables = {name: lm.by_category(rs) for name, rs in results.items()}
    return Report(tables, runs, time.perf_counter() - t0)


def render(report: Report, memory: MemoryConfig, captions: bool) -> str:
    names = list(report.tables)
    cats = list(report.tables["exoclaw"])
    lines = [f"memory: {memory}", f"captions: {'on' if captions else 'off'}"]
    for cat in cats:
        n = report.tables["exoclaw"][cat].n
        lines.append("")
        lines.append(f"{cat} ({n} questions)")
        lines.append(f"  {'system':10s} {'recall':>7s} {'strict':>7s} {'median':>8s} {'p95':>8s}")
        for name in names:
            s = report.tables[name].get(cat)
            if s is None:
                continue
            lines.append(
                f"  {name:10s} {s.recall * 100:6.1f}% {s.strict * 100:6.1f}% {_tok(s.median_tokens):>8s} "
                f"{_tok(s.p95_tokens):>8s}"
            )
    feed = sum(r.feed_s for r in report.runs)
    turns = sum(len(r.contexts) for r in report.runs)
    lines.append("")
    lines.append(
        f"recall = all evidence present (>= 70% of content words); strict = verbatim; sizes in tokens (chars/4), "
        f"question removed. {turns} questions; fed in {feed:.1f} s; total {report.seconds:.1f} s"
    )
    return "\n".join(lines)


def _tok(value: float) -> str:
    return f"{-(-value // 1):,.0f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--memory", action="append", default=[], metavar="KEY=VALUE",
                        help="a [memory] setting (repeatable); also $EXOCLAW_LOCOMO_MEMORY, space-separated")
    parser.add_argument("--captions", choices=("on", "off"), default=os.environ.get("EXOCLAW_LOCOMO_CAPTIONS", "on"))
    parser.add_argument("--conversations", default="", help="comma-separated sample ids (default: all)")
    args = parser.parse_args(argv)
    path = data_path()
    if not path.exists():
        print(f"skipped: no LoCoMo data at {path} (set EXOCLAW_LOCOMO_DIR)")
        return 0
    convs = lm.load(path)
    if args.conversations:
        wanted = set(args.conversations.split(","))
        convs = [c for c in convs if c.sample_id in wanted]
    memory = memory_config([*env_memory_items(), *args.memory])
    logging.getLogger("exoclaw").setLevel(logging.ERROR)  # each question turn fails on purpose
    report = asyncio.run(measure(convs, memory, captions=args.captions == "on"))
    print(render(report, memory, args.captions == "on"))
    return 0


# ---------------------------------------------------------------- as a benchmark test


def test_locomo_evidence_recall(capsys: Any) -> None:
    import pytest

    path = data_path()
    if not path.exists():
        pytest.skip(f"no LoCoMo data at {path} (set EXOCLAW_LOCOMO_DIR)")
    memory = memory_config(env_memory_items())
    captions = os.environ.get("EXOCLAW_LOCOMO_CAPTIONS", "on") == "on"
    logging.getLogger("exoclaw").setLevel(logging.ERROR)  # each question turn fails on purpose
    report = asyncio.run(measure(lm.load(path), memory, captions=captions))
    with capsys.disabled():
        print()
        print(render(report, memory, captions))
    overall = report.tables["exoclaw"]["overall"]
    assert overall.n > 0


if __name__ == "__main__":
    raise SystemExit(main())
