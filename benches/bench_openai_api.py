"""Latency and throughput of ``POST /v1/chat/completions`` (the OpenAI-compatible face, issue 11).

Run: ``python -m pytest benches/bench_openai_api.py --benchmark-only -s``

The gateway is a real ``exoclaw serve`` subprocess (SQLite file store,
INFO logs to a file, no access log), so the load generator in this process
and the gateway each have a core on a 2-core machine. The client is a
minimal HTTP/1.1 client on raw asyncio streams with kept-alive connections
(pre-built request bytes), so little of what is measured is client work.
Every request streams (``stream: true``); each client is its own ``user``
(its own session).

Two upstreams:

* ``echo``: the builtin echo provider with ``chunk_delay_s = 0`` (its own
  time to first token is a few microseconds, measured by
  ``test_echo_provider_ttft_direct``);
* ``fake-openai``: the OpenAI provider pointed at the fake OpenAI server of
  ``tests/fakes`` (its own subprocess), which streams 20 content chunks.

Targets: gateway-added TTFT under 2 ms p50 at 1 client (TTFT through the
gateway minus TTFT of the same request sent straight to the upstream), and
at least 500 requests/s at 50 concurrent clients. The figures are printed
at the end (``-s``) and stored in ``extra_info``; nothing fails on a slow
machine except the sanity checks of each response.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from builtin_plugins.providers.echo import EchoProvider
from exoclaw_hooks import LLMRequest, Message, ProviderSettings

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 50
REQUESTS_PER_CLIENT = 40
TTFT_ROUNDS = 400
#: 154 characters: the fake upstream echoes ``echo: <text>`` in 8-character chunks, i.e. 20 chunks
LONG_TEXT = ("The quick brown fox jumps over the lazy dog while the gateway streams every chunk at once. " * 2)[:154]
FIRST_CONTENT = re.compile(rb'"content":\s?"[^"]')
END = b"\r\n0\r\n\r\n"  # the last chunk of a chunked body
RESULTS: dict[str, str] = {}
BASELINES: dict[str, float] = {}  # p50 ms of the direct runs


# ------------------------------------------------------------------ processes


def _wait_line(proc: subprocess.Popen, pattern: str, timeout: float = 30.0) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        m = re.search(pattern, line)
        if m:
            return m
    proc.kill()
    raise RuntimeError(f"subprocess did not start: {proc.communicate()}")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@contextmanager
def fake_upstream() -> Iterator[int]:
    """The fake OpenAI server in its own process; yields its port."""
    code = ("import asyncio\nfrom tests.fakes.llm_server import FakeLLMServer\n"
            "async def main():\n    s = await FakeLLMServer().start()\n    print('port', s.port, flush=True)\n"
            "    await asyncio.Event().wait()\nasyncio.run(main())\n")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        yield int(_wait_line(proc, r"port (\d+)").group(1))
    finally:
        _stop(proc)


@contextmanager
def gateway(tmp: Path, agent_toml: str) -> Iterator[int]:
    """``exoclaw serve`` with one agent; yields its port."""
    home = tmp / "home"
    config = tmp / "config.toml"
    config.write_text(f'[gateway]\nbind = "127.0.0.1"\nport = 0\n\n[agent]\nid = "default"\n{agent_toml}')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EXOCLAW_", "ANTHROPIC_", "OPENAI_"))}
    env.update(EXOCLAW_HOME=str(home), HOME=str(tmp), PYTHONUNBUFFERED="1")
    with open(tmp / "gateway.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "exoclaw_core.cli.main", "serve", "--config", str(config)],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
        try:
            yield int(_wait_line(proc, r"listening on ws://[^:]+:(\d+)/ws").group(1))
        finally:
            _stop(proc)


ECHO = 'provider = "echo"\nmodel = "echo"\n[agent.options]\nchunk_delay_s = 0\n'


def openai_agent(upstream_port: int) -> str:
    return (f'provider = "openai"\nmodel = "gpt-4o-mini"\nbase_url = "http://127.0.0.1:{upstream_port}/v1"\n'
            'api_key = "sk-bench"\n')


# ------------------------------------------------------------------ a minimal streaming client


def request_bytes(path: str, body: dict) -> bytes:
    raw = json.dumps(body).encode()
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer sk-bench\r\nContent-Length: {len(raw)}\r\n\r\n").encode() + raw


def chat_body(user: str, text: str) -> dict:
    return {"model": "exoclaw", "stream": True, "user": user, "messages": [{"role": "user", "content": text}]}


class Conn:
    """One kept-alive connection: ``start`` sends and reads up to the first content chunk, ``finish`` the rest."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.buf = b""

    @classmethod
    async def open(cls, port: int) -> "Conn":
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def _read(self) -> None:
        data = await self.reader.read(65536)
        if not data:
            raise ConnectionError("closed")
        self.buf += data

    async def start(self, request: bytes) -> None:
        self.buf = b""
        self.writer.write(request)
        while not FIRST_CONTENT.search(self.buf):
            await self._read()

    async def finish(self) -> None:
        while not self.buf.endswith(END):
            await self._read()
        if not self.buf.startswith(b"HTTP/1.1 200") or b"data: [DONE]" not in self.buf:
            raise AssertionError(self.buf[:500])

    async def send(self, request: bytes) -> None:
        await self.start(request)
        await self.finish()

    def close(self) -> None:
        self.writer.close()


def bench_ttft(benchmark, port: int, request: bytes) -> None:
    """Time one request → its first content chunk; the rest of each stream is read outside the timing."""
    loop = asyncio.new_event_loop()
    conn = loop.run_until_complete(Conn.open(port))
    started = [False]

    def drain_previous() -> None:
        if started[0]:
            loop.run_until_complete(conn.finish())

    def first_chunk() -> None:
        loop.run_until_complete(conn.start(request))
        started[0] = True

    try:
        benchmark.pedantic(first_chunk, setup=drain_previous, rounds=TTFT_ROUNDS, warmup_rounds=20)
        drain_previous()
    finally:
        conn.close()
        loop.close()


async def load(port: int, text: str, clients: int, per_client: int) -> float:
    """``clients`` connections sending ``per_client`` requests each, back to back; returns requests/s."""
    conns = [await Conn.open(port) for _ in range(clients)]
    requests = [request_bytes("/v1/chat/completions", chat_body(f"bench{i}", text)) for i in range(clients)]
    try:
        await asyncio.gather(*(c.send(r) for c, r in zip(conns, requests)))  # warm-up: sessions exist
        t0 = time.perf_counter()

        async def client(c: Conn, r: bytes) -> None:
            for _ in range(per_client):
                await c.send(r)

        await asyncio.gather(*(client(c, r) for c, r in zip(conns, requests)))
        return clients * per_client / (time.perf_counter() - t0)
    finally:
        for c in conns:
            c.close()


def run(coro):
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def _record(benchmark, name: str, **figures: float) -> None:
    benchmark.extra_info.update(figures)
    RESULTS[name] = ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items())


@pytest.fixture(scope="module", autouse=True)
def _print_results():
    yield
    print("\n\nOpenAI face (gateway = `exoclaw serve` subprocess):")
    for name, line in RESULTS.items():
        print(f"  {name}: {line}")


# ------------------------------------------------------------------ benchmarks


def test_echo_provider_ttft_direct(benchmark):
    """The echo provider's own time to its first ``TextDelta``, called in-process (the baseline)."""
    provider = EchoProvider(ProviderSettings("echo", "echo", options={"chunk_delay_s": 0}))
    request = LLMRequest(model="echo", system="", messages=(Message(role="user", content="hello"),))

    async def first() -> None:
        agen = provider.stream(request)
        await agen.__anext__()
        await agen.aclose()

    loop = asyncio.new_event_loop()
    try:
        benchmark(lambda: loop.run_until_complete(first()))
    finally:
        loop.close()
    BASELINES["echo"] = benchmark.stats.stats.median * 1000
    _record(benchmark, "echo provider TTFT, direct", p50_ms=BASELINES["echo"])


def test_gateway_ttft_echo_1_client(benchmark, tmp_path):
    """Request sent → first content chunk received, through the gateway, echo provider (1 client, kept alive).

    With the echo provider's TTFT ~0 this is what the gateway adds: HTTP parsing,
    validation, routing, the session lane, context assembly, the hook calls before
    the LLM call, and the first SSE write.
    """
    with gateway(tmp_path, ECHO) as port:
        bench_ttft(benchmark, port, request_bytes("/v1/chat/completions", chat_body("ttft", "hello")))
    p50 = benchmark.stats.stats.median * 1000
    _record(benchmark, "TTFT through the gateway, echo, 1 client", p50_ms=p50,
            added_p50_ms=p50 - BASELINES.get("echo", 0.0))


def test_fake_openai_ttft_direct(benchmark):
    """The fake OpenAI upstream's own TTFT: the same streamed request sent straight to it (the baseline)."""
    body = {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": LONG_TEXT}]}
    with fake_upstream() as up:
        bench_ttft(benchmark, up, request_bytes("/v1/chat/completions", body))
    BASELINES["fake_openai"] = benchmark.stats.stats.median * 1000
    _record(benchmark, "TTFT fake OpenAI upstream, direct", p50_ms=BASELINES["fake_openai"])


def test_gateway_ttft_fake_openai_1_client(benchmark, tmp_path):
    """TTFT through the gateway to the fake OpenAI upstream (20 chunks), 1 client; minus the direct TTFT = added."""
    with fake_upstream() as up, gateway(tmp_path, openai_agent(up)) as port:
        bench_ttft(benchmark, port, request_bytes("/v1/chat/completions", chat_body("ttft", LONG_TEXT)))
    p50 = benchmark.stats.stats.median * 1000
    figures = {"p50_ms": p50}
    direct = BASELINES.get("fake_openai")
    if direct is not None:
        figures["added_p50_ms"] = p50 - direct
    _record(benchmark, "TTFT through the gateway, fake OpenAI, 1 client", **figures)


def test_throughput_echo_50_clients(benchmark, tmp_path):
    """Completed streamed requests per second, 50 concurrent clients (sessions), echo provider, no delay."""
    with gateway(tmp_path, ECHO) as port:
        benchmark.pedantic(lambda: run(load(port, "hello", CLIENTS, REQUESTS_PER_CLIENT)), rounds=3)
    _record(benchmark, "throughput, echo, 50 clients",
            mean_requests_per_s=CLIENTS * REQUESTS_PER_CLIENT / benchmark.stats.stats.mean)


def test_throughput_fake_openai_50_clients(benchmark, tmp_path):
    """Completed streamed requests per second, 50 concurrent clients, fake OpenAI upstream streaming 20 chunks.

    Three processes share the machine here: the load generator, the gateway
    and the fake upstream.
    """
    with fake_upstream() as up, gateway(tmp_path, openai_agent(up)) as port:
        benchmark.pedantic(lambda: run(load(port, LONG_TEXT, CLIENTS, REQUESTS_PER_CLIENT)), rounds=3)
    _record(benchmark, "throughput, fake OpenAI (20 chunks), 50 clients",
            mean_requests_per_s=CLIENTS * REQUESTS_PER_CLIENT / benchmark.stats.stats.mean)
