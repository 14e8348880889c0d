"""Generated memory scenarios through a real gateway: is the answer in the context, at what size?

Run: ``python benches/bench_memory_scenarios.py [--memory KEY=VALUE ...]`` or
``python -m pytest benches/bench_memory_scenarios.py -s``.

The scenarios (tests/fakes/memory_scenarios.py): 20 everyday facts buried in
small talk (target 20/20 with a context under 5,000 tokens), the turn-5 fact
asked at turn 50, facts that change, corrections, several people in one
channel. Each is fed to a fresh gateway (tests/fakes/conversation.py: builtin
plugins through entry points, SQLite, a capturing model) and each probe's
context is checked: every expected answer present, no stale value stated as
a current fact. Sizes are characters / 4 of the context without the question.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
from pathlib import Path
from typing import Any, Sequence

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benches.bench_locomo import env_memory_items, memory_settings, memory_table  # noqa: E402
from tests.fakes.conversation import converse  # noqa: E402
from tests.fakes.memory_scenarios import Scenario, all_scenarios, answered  # noqa: E402


async def run(scenarios: Sequence[Scenario], memory: Any) -> list[tuple[Scenario, list[bool], list[float]]]:
    out = []
    for sc in scenarios:
        conv = await converse(sc.turns, [p.question for p in sc.probes], memory)
        hits = [answered(ctx, p) for ctx, p in zip(conv.contexts, sc.probes)]
        sizes = [len(ctx.replace(p.question, " ")) / 4 for ctx, p in zip(conv.contexts, sc.probes)]
        out.append((sc, hits, sizes))
    return out


def render(results: list[tuple[Scenario, list[bool], list[float]]], memory: Any) -> str:
    lines = [f"memory: {memory or 'defaults'}", f"{'scenario':32s} {'turns':>5s} {'answered':>9s} {'median':>7s} {'max':>7s}"]
    for sc, hits, sizes in results:
        lines.append(f"{sc.name:32s} {len(sc.turns):5d} {sum(hits):4d}/{len(hits):<4d} "
                     f"{statistics.median(sizes):7.0f} {max(sizes):7.0f}")
        for probe, hit in zip(sc.probes, hits):
            if not hit:
                lines.append(f"    missed: {probe.question}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--memory", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    logging.getLogger("exoclaw").setLevel(logging.ERROR)  # every question turn fails on purpose
    memory = memory_settings(memory_table([*env_memory_items(), *args.memory]))
    print(render(asyncio.run(run(all_scenarios(), memory)), memory))
    return 0


def test_memory_scenarios(capsys: Any) -> None:
    logging.getLogger("exoclaw").setLevel(logging.ERROR)
    memory = memory_settings(memory_table(env_memory_items()))
    results = asyncio.run(run(all_scenarios(), memory))
    with capsys.disabled():
        print()
        print(render(results, memory))
    assert all(len(h) == len(sc.probes) for sc, h, _ in results)


if __name__ == "__main__":
    raise SystemExit(main())
