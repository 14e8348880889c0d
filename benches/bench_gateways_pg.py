"""Turns per second with 1, 2 and 3 gateways on one PostgreSQL, against 1 gateway on SQLite (issue 19).

Run: ``python -m pytest benches/bench_gateways_pg.py --benchmark-only -q -s`` (needs PostgreSQL on
127.0.0.1:5432, as the tests do; a database of its own, dropped afterwards).

Each gateway is a real ``exoclaw serve`` (echo provider, no pauses, every builtin hook plugin) with
``$EXOCLAW_STORE_URL`` naming the database; ``loadgen.py turns`` in its own process spreads 50 clients
(each its own session, turns back to back) over the gateways for ``EXOCLAW_BENCH_SECONDS``. The machine
has 2 cores shared by the gateways, the PostgreSQL server's backends and the load generator, so more
gateways cannot mean more turns/s here; the table shows where the CPU goes: the gateways (sum), the
load generator, and the rest of the machine's busy CPU (mostly PostgreSQL).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.harness import postgres_database

ECHO_AGENT = """\
[agent]
provider = "echo"
model = "echo"
options = { chunk_delay_s = 0 }
"""
CLIENTS = 50


def _measure(machine: Any, gateways: list[Any], lg: Any) -> dict[str, Any]:
    lg.wait_event("measuring")
    t0, g0, m0, l0 = time.monotonic(), sum(g.cpu() for g in gateways), machine.busy_seconds(), lg.cpu()
    lg.wait_event("measured")
    wall = time.monotonic() - t0
    g1, m1, l1 = sum(g.cpu() for g in gateways), machine.busy_seconds(), lg.cpu()
    res = lg.result()
    assert res["turns"] > 0 and res["errors"] == 0 and not res["client_failures"], res
    res["gateways_cores"] = round((g1 - g0) / wall, 3)
    res["loadgen_cores"] = round((l1 - l0) / wall, 3)
    res["rest_cores"] = round(max(0.0, (m1 - m0) - (g1 - g0) - (l1 - l0)) / wall, 3)
    res["gateway_cpu_us_per_turn"] = round((g1 - g0) / res["turns"] * 1e6, 1)
    res["rest_cpu_us_per_turn"] = round(max(0.0, (m1 - m0) - (g1 - g0) - (l1 - l0)) / res["turns"] * 1e6, 1)
    return res


def _record(figures: Any, benchmark: Any, bench: str, res: dict[str, Any]) -> None:
    benchmark.extra_info.update(res)
    figures.add(bench, "turns/s", res["turns_per_s"], "turns/s", note=f"p50 {res['turn_ms']['p50']} ms, "
                f"p99 {res['turn_ms']['p99']} ms")
    figures.add(bench, "CPU: gateways / loadgen / rest (PostgreSQL)",
                res["gateways_cores"], "cores", note=f"{res['loadgen_cores']} / {res['rest_cores']} cores; "
                f"{res['gateway_cpu_us_per_turn']:.0f} µs gateway + {res['rest_cpu_us_per_turn']:.0f} µs rest per turn")


def test_turns_per_second_sqlite_one_gateway(benchmark, gateway, loadgen, figures, knobs, machine):
    """The baseline: one gateway, SQLite in its data directory, 50 clients."""
    gw = gateway(ECHO_AGENT)
    machine.wait_for_quiet()
    lg = loadgen("turns", "--url", gw.url, "--clients", CLIENTS, "--seconds", knobs.seconds, "--warmup", knobs.warmup)
    res = benchmark.pedantic(_measure, args=(machine, [gw], lg), rounds=1, iterations=1)
    _record(figures, benchmark, "SQLite, 1 gateway", res)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_turns_per_second_postgres_gateways(benchmark, gateway, loadgen, figures, knobs, machine, n):
    """``n`` gateways on one PostgreSQL database, 50 clients spread over them (client i → gateway i mod n)."""
    with postgres_database() as url:
        gws = [gateway(ECHO_AGENT, name=f"gw{k}", EXOCLAW_STORE_URL=url) for k in range(n)]
        machine.wait_for_quiet()
        more = [a for g in gws[1:] for a in ("--also-url", g.url)]
        lg = loadgen("turns", "--url", gws[0].url, *more, "--clients", CLIENTS, "--seconds", knobs.seconds,
                     "--warmup", knobs.warmup)
        res = benchmark.pedantic(_measure, args=(machine, gws, lg), rounds=1, iterations=1)
        for g in gws:
            g.stop()
    _record(figures, benchmark, f"PostgreSQL, {n} gateway{'s' * (n > 1)}", res)
