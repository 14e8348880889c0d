#!/usr/bin/env python
"""Run the whole benchmark suite and print the performance tables.

    python benches/report.py                 # the whole suite (a few minutes)
    python benches/report.py -k gateway      # extra arguments go to pytest
    python benches/report.py --markdown      # the gateway table as Markdown too (for benches/README.md)

It runs ``python -m pytest benches/ --benchmark-only -q`` (its output as
usual, ending with the end-to-end gateway figures), then prints one line per
benchmark of every module: its median time and the scalar figures it stored
in ``extra_info``. The exit code is pytest's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def fmt_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def scalar_figures(extra: dict[str, Any], limit: int = 6) -> str:
    items = [(k, v) for k, v in extra.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return ", ".join(f"{k}={fmt_value(v)}" for k, v in items[:limit])


def all_benchmarks_table(data: dict[str, Any]) -> str:
    rows = []
    for b in data.get("benchmarks", []):
        module = Path(b.get("fullname", "").split("::")[0]).stem
        rows.append((f"{module}::{b['name']}", fmt_time(b["stats"]["median"]), scalar_figures(b.get("extra_info", {}))))
    if not rows:
        return "(no benchmark ran)"
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    lines = [f"{'benchmark':{w0}}  {'median':>{w1}}  figures (extra_info)", f"{'-' * w0}  {'-' * w1}  {'-' * 20}"]
    lines += [f"{a:{w0}}  {b:>{w1}}  {c}" for a, b, c in rows]
    return "\n".join(lines)


def markdown_table(figures: dict[str, Any]) -> str:
    def fmt(v: float | None) -> str:
        if v is None:
            return "-"
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"

    lines = [f"Measured on: {figures['about']}", "",
             "| benchmark | figure | value | unit | target | result / notes |", "|---|---|---:|---|---|---|"]
    for r in figures["rows"]:
        status = r["note"] if r["ok"] is None else ("ok" if r["ok"] else "**MISSED**") + (f" ({r['note']})" if r["note"] else "")
        lines.append(f"| {r['bench']} | {r['figure']} | {fmt(r['value'])} | {r['unit']} | {r['target']} | {status} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    markdown = "--markdown" in argv
    args = [a for a in argv if a != "--markdown"]
    with tempfile.TemporaryDirectory(prefix="exoclaw-bench-") as tmp:
        bench_json = Path(tmp) / "benchmarks.json"
        figures_json = Path(tmp) / "figures.json"
        env = dict(os.environ, EXOCLAW_BENCH_FIGURES_JSON=str(figures_json))
        cmd = [sys.executable, "-m", "pytest", "benches/", "--benchmark-only", "-q",
               f"--benchmark-json={bench_json}", *args]
        print("$", " ".join(cmd[1:]), flush=True)
        code = subprocess.call(cmd, cwd=REPO, env=env)
        if bench_json.exists():
            print("\n=== every benchmark (median of its rounds; figures it recorded) ===")
            print(all_benchmarks_table(json.loads(bench_json.read_text())))
        if markdown and figures_json.exists():
            print("\n=== gateway figures (Markdown) ===")
            print(markdown_table(json.loads(figures_json.read_text())))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
