"""LoCoMo evidence recall through a real gateway (the measure of ``../shared/locomo-dev/README.md``).

Run it::

    python benches/bench_locomo.py                       # the table per category, baselines beside it
    python benches/bench_locomo.py --memory context_tokens=3000 --memory episodic_window=3
    python -m pytest benches/bench_locomo.py -s          # the same, as a benchmark test

Data: ``$EXOCLAW_LOCOMO_DIR`` or ``../shared/locomo-dev`` relative to the
repository root (read there, never copied into the project); without it the
test is skipped with the reason.

How a conversation is fed (:func:`tests.fakes.conversation.converse`, one
fresh gateway per conversation):

* an in-process gateway (:func:`tests.harness.running_gateway`) with the
  builtin plugins loaded through their entry points, the ``[memory]``
  settings given on the command line / in ``$EXOCLAW_LOCOMO_MEMORY``, and
  a persistent SQLite store in a temporary directory whose clock is the
  conversation's: every message of a session is stored at that session's
  ``date_time``, as if it had been said then;
* one WebSocket ``chat.send`` per utterance, all in one session of one
  person (channel ``locomo``, account ``group``), content
  ``[<session date_time>] <speaker>: <text>`` — exactly what the held-out
  measure feeds. ``--captions on`` appends a shared photo's ``blip_caption``
  as `` [shares a photo: <caption>]`` (what a channel that describes images
  would deliver); evidence words come from the text alone, so a caption can
  only cost context, never earn a hit;
* the model answers every conversation turn ``OK.``.

Each question of categories 1-4 (those with evidence) is then sent as a turn
of that session with its plain text. The capturing provider records the
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
import json
import datetime as dt
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script
    sys.path.insert(0, str(REPO))

from benches import locomo_measure as lm  # noqa: E402
import exoclaw_hooks  # noqa: E402
from tests.fakes.conversation import Said, converse  # noqa: E402

def data_path() -> Path:
    """``$EXOCLAW_LOCOMO_DIR``, else ``../shared/locomo-dev`` from the repository root (a git worktree
    one level deeper, ``wt/NAME``, finds it one level further up)."""
    if os.environ.get("EXOCLAW_LOCOMO_DIR"):
        return Path(os.environ["EXOCLAW_LOCOMO_DIR"]) / "locomo-dev.json"
    candidates = [REPO.parent / "shared" / "locomo-dev", REPO.parent.parent / "shared" / "locomo-dev"]
    root = next((c for c in candidates if c.is_dir()), candidates[0])
    return root / "locomo-dev.json"


# ---------------------------------------------------------------- settings from the command line


def _value(text: str) -> Any:
    """A setting's value as TOML would give it: JSON when it parses (``3000``, ``true``, ``{"recall": 0.7}``), else text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def memory_table(items: Sequence[str]) -> dict[str, Any]:
    """``["context_tokens=3000", 'shares={"recall": 0.7}']`` → ``{"context_tokens": 3000, "shares": {...}}``."""
    table: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"--memory {item!r}: expected KEY=VALUE")
        table[key.strip()] = _value(value.strip())
    return table


def memory_settings(table: Mapping[str, Any]) -> Any:
    """The ``[memory]`` settings as the harness takes them: ``None`` for the defaults; where the core
    still builds ``MemoryConfig`` (exported by ``exoclaw_hooks``) one of those; else the table itself
    (a plugin-owned table), measuring the offline default (``extractor = "rules"``) unless it says."""
    if not table:
        return None
    config = getattr(exoclaw_hooks, "MemoryConfig", None)
    if config is None:
        return {"extractor": "rules", **table}
    try:
        return config(**table)
    except TypeError:
        known = ", ".join(f.name for f in dataclasses.fields(config))
        raise SystemExit(f"--memory: unknown key in {sorted(table)} (known: {known})") from None


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


async def run_conversation(conv: lm.Conversation, memory: Any, *, captions: bool = False) -> ConversationRun:
    """Feed one LoCoMo conversation (each session at its date_time) and capture each scored question's request."""
    turns = [Said(u.line(caption=captions), session_time(u.date_time)) for u in conv.utterances]
    t0 = time.perf_counter()
    run = await converse(turns, [q.question for q in conv.scored()], memory, channel="locomo", account="group")
    if run.stored_messages != 2 * len(turns):
        raise RuntimeError(f"{conv.sample_id}: {run.stored_messages} messages stored, not {2 * len(turns)}")
    return ConversationRun(conv.sample_id, run.contexts, time.perf_counter() - t0)


# ---------------------------------------------------------------- the whole measure


@dataclasses.dataclass
class Report:
    tables: dict[str, dict[str, lm.Summary]]  # system -> category -> summary
    runs: list[ConversationRun]
    seconds: float


async def measure(convs: Sequence[lm.Conversation], memory: Any, *, captions: bool = False) -> Report:
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


def render(report: Report, memory: Any, captions: bool) -> str:
    names = list(report.tables)
    cats = list(report.tables["exoclaw"])
    lines = [f"memory: {memory or 'defaults'}", f"captions: {'on' if captions else 'off'}"]
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
        f"question removed. {turns} questions; conversations fed and asked in {feed:.1f} s; total {report.seconds:.1f} s"
    )
    return "\n".join(lines)


def _tok(value: float) -> str:
    return f"{-(-value // 1):,.0f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--memory", action="append", default=[], metavar="KEY=VALUE",
                        help='a [memory] setting, VALUE as JSON or text (repeatable): context_tokens=3000, '
                             'shares=\'{"recall": 0.7}\', extractor=off; also $EXOCLAW_LOCOMO_MEMORY, space-separated')
    parser.add_argument("--captions", choices=("on", "off"), default=os.environ.get("EXOCLAW_LOCOMO_CAPTIONS", "off"))
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
    memory = memory_settings(memory_table([*env_memory_items(), *args.memory]))
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
    memory = memory_settings(memory_table(env_memory_items()))
    captions = os.environ.get("EXOCLAW_LOCOMO_CAPTIONS", "off") == "on"
    logging.getLogger("exoclaw").setLevel(logging.ERROR)  # each question turn fails on purpose
    report = asyncio.run(measure(lm.load(path), memory, captions=captions))
    with capsys.disabled():
        print()
        print(render(report, memory, captions))
    overall = report.tables["exoclaw"]["overall"]
    assert overall.n > 0


if __name__ == "__main__":
    raise SystemExit(main())
