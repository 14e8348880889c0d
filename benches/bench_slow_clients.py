"""Issue 16's slow-client trial, measured: ``exoclaw serve`` under ``ulimit -n 1024`` and 1,500 half-open connections.

Run: ``python -m pytest benches/bench_slow_clients.py --benchmark-only -q -s``

A real ``exoclaw serve`` (echo provider, default ``[gateway]`` settings) is
started with RLIMIT_NOFILE lowered to 1,024; 1,500 half-open connections are
opened (heads that never end, silent connections, POSTs whose body never
comes, WebSocket upgrades that never finish — the shapes of
``tests/core/gateway/test_slow_clients_serve.py``) and held, with 100 more
every round; meanwhile rounds of legitimate work run for
``EXOCLAW_BENCH_SECONDS`` (default 10): ``/healthz``, a WebSocket turn, an
OpenAI completion. Recorded: rounds that fully succeeded, failures, the
median time of a round, and how much the log grew.
"""

from __future__ import annotations

import asyncio
import os
import time

import aiohttp

from tests.core.gateway.test_slow_clients_serve import LimitedServe, legitimate_round, need_descriptors, open_half


def test_half_open_connections_under_1024_files(benchmark, tmp_path):
    seconds = float(os.environ.get("EXOCLAW_BENCH_SECONDS", "10"))
    need_descriptors(8192)
    figures: dict[str, float] = {}

    async def trial(served: LimitedServe) -> None:
        start_size = served.log_size()
        held = await open_half(served.port, 1500)
        figures["half_open_accepted"] = len(held)
        rounds, failures, times = 0, 0, []
        timeout = aiohttp.ClientTimeout(total=15)
        async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(force_close=True)) as s:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                t0 = time.perf_counter()
                failed = await legitimate_round(s, served.port, rounds)
                times.append(time.perf_counter() - t0)
                rounds, failures = rounds + 1, failures + bool(failed)
                held += await open_half(served.port, 100)
        for writer in held:
            writer.transport.abort()
        times.sort()
        figures.update(rounds=rounds, failed_rounds=failures, round_ms_p50=round(times[len(times) // 2] * 1e3, 1),
                       half_open_total=len(held), log_growth_bytes=served.log_size() - start_size)

    def run() -> None:
        served = LimitedServe(tmp_path, nofile=1024)
        try:
            asyncio.run(trial(served))
        finally:
            served.stop()

    benchmark.pedantic(run, rounds=1, warmup_rounds=0)
    benchmark.extra_info.update(figures)
    print("\n\nslow clients (benches/bench_slow_clients.py): " + "  ".join(f"{k}={v}" for k, v in figures.items()))
