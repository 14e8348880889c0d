"""permessage-deflate on ``/ws``: what it costs per streamed chunk, and what it saves (issue 22).

Run: ``python -m pytest benches/bench_ws_compression.py --benchmark-only -q -s``
(the figures are printed at the end and kept in each benchmark's ``extra_info``).

Every measurement is made with compression off and on (aiohttp's
permessage-deflate as ``/ws`` negotiates it: level 1, 15-bit window, context
takeover — what a browser or the ``websockets`` library gets):

The text streamed is real: 1.2 MB of this repository's prose and code, cut
into chunks, each frame new (deflate would flatter repeated frames).

* ``test_frame_cost`` — the server's time to write one stream frame (median
  of 5 rounds): aiohttp's own ``WebSocketWriter`` (the writer ``/ws`` uses)
  writing the gateway's real ``text`` event frames into a transport that
  only counts bytes, so only framing and compression are measured. Chunk
  sizes: ``token`` (4–12 characters, what a model streams; 2,000 frames a
  round), ``echo`` (the echo provider's 20; 2,000), ``32k`` (32 KiB frames,
  which aiohttp compresses in a thread; 6). ``bytes_per_frame`` is what goes
  on the wire.
* ``test_stream_end_to_end`` — a real gateway in this process (echo
  provider, no delay between chunks) and a ``websockets`` client in the same
  process: a reply of ~1,900 chunks, best of 3, wall time per chunk (both
  sides' work: server compression, client decompression) and bytes per chunk
  on the wire (counted at the client's socket). Noisy on a shared machine.
* ``test_memory_per_connection`` — 100 connections, each having received
  one answer: memory allocated by aiohttp (where the server's deflate state
  lives), per connection, from ``tracemalloc``.
"""

from __future__ import annotations

import asyncio
import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import websockets

from exoclaw_core.gateway.protocol import event_frame
from exoclaw_core.config import GatewayConfig
from tests.harness import make_settings, running_gateway

RESULTS: dict[str, dict[str, Any]] = {}
ROOT = Path(__file__).resolve().parents[1]
#: 1.2 MB of real text — this repository's prose and code, as a model's replies mix them — so deflate
#: finds what it would find in real replies, and no frame repeats within its 32 KiB window
PROSE = "\n".join(p.read_text(encoding="utf-8") for pattern in ("*.md", "*.py", "*.zig")
                   for p in sorted(ROOT.glob(f"[!.]*/**/{pattern}")) + sorted(ROOT.glob(pattern))
                   if "/." not in str(p.relative_to(ROOT)))


def cut(text: str, sizes: list[int]) -> list[str]:
    out, i, n = [], 0, 0
    while i < len(text):
        out.append(text[i:i + sizes[n % len(sizes)]])
        i, n = i + sizes[n % len(sizes)], n + 1
    return out


CHUNKS = {
    "token": cut(PROSE[:200_000], [4, 7, 5, 12, 6, 9]),  # what a model streams: a token or two per chunk
    "echo": cut(PROSE[:400_000], [20]),  # the echo provider's chunks
    "32k": cut(PROSE, [32 * 1024]),  # one large frame: aiohttp compresses it in a thread
}
FRAMES = {"token": 2000, "echo": 2000, "32k": 6}  # per round (6 rounds fit in the text)
ROUNDS = 5


class CountingTransport:
    """Just enough of an asyncio transport for aiohttp's writer: counts what it is given."""

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, data: bytes) -> None:
        self.bytes += len(data)

    def is_closing(self) -> bool:
        return False


class IdleProtocol:
    _paused = False


@pytest.mark.parametrize("compress", [False, True], ids=["off", "on"])
@pytest.mark.parametrize("kind", list(CHUNKS))
def test_frame_cost(benchmark, kind, compress):
    from aiohttp._websocket.writer import WebSocketWriter
    from aiohttp.http_websocket import WSMsgType

    chunks, per_round = CHUNKS[kind], FRAMES[kind]
    frames = [event_frame("r1", "text", c).encode() for c in chunks[:per_round * (ROUNDS + 1)]]
    transport = CountingTransport()
    writer = WebSocketWriter(IdleProtocol(), transport, compress=15 if compress else 0)  # type: ignore[arg-type]
    loop = asyncio.new_event_loop()
    rounds = iter(range(ROUNDS + 1))

    async def write_round() -> None:  # each round writes the next frames of the text: no repeats
        start = next(rounds) * per_round
        for frame in frames[start:start + per_round]:
            await writer.send_frame(frame, WSMsgType.TEXT)

    try:
        benchmark.pedantic(lambda: loop.run_until_complete(write_round()), rounds=ROUNDS, warmup_rounds=1)
    finally:
        loop.close()
    per_frame_us = benchmark.stats.stats.median / per_round * 1e6
    raw = sum(len(f) for f in frames) / len(frames)
    wire = transport.bytes / len(frames)
    figures = {"us_per_frame": round(per_frame_us, 2), "json_bytes_per_frame": round(raw, 1),
               "bytes_per_frame": round(wire, 1)}
    benchmark.extra_info.update(figures)
    RESULTS[f"frame {kind} compression={'on' if compress else 'off'}"] = figures


class CountingSocket:
    """Counts bytes received by a client connection (its transport's protocol is wrapped)."""

    def __init__(self) -> None:
        self.bytes = 0


@pytest.mark.parametrize("compress", [False, True], ids=["off", "on"])
def test_stream_end_to_end(benchmark, tmp_path, compress):
    content = PROSE[:40_000]  # the echo reply: ~2,000 chunks of ~20 characters of prose
    results: dict[str, float] = {}

    async def run() -> None:
        settings = make_settings(data_dir=tmp_path, gateway=GatewayConfig(port=0, ws_compression=compress))
        async with running_gateway(settings) as gw:
            counted = CountingSocket()
            ws = await websockets.connect(gw.url, compression="deflate", max_size=None)
            original = ws.transport.get_protocol()
            data_received = original.data_received

            def counting(data: bytes) -> None:
                counted.bytes += len(data)
                data_received(data)

            original.data_received = counting  # type: ignore[method-assign]
            assert bool(ws.protocol.extensions) == compress
            await ws.recv()
            loop = asyncio.get_running_loop()
            for round_ in range(3):
                before, frames = counted.bytes, 0
                t0 = loop.time()
                await ws.send(json.dumps({"id": "s", "method": "chat.send", "params": {
                    "channel": "bench", "account": "a", "peer": f"p{round_}", "content": content}}))
                while True:
                    frame = json.loads(await ws.recv())
                    frames += frame.get("event") == "text"
                    if frame.get("event") == "done":
                        break
                elapsed = loop.time() - t0
                results["us_per_chunk"] = min(results.get("us_per_chunk", 1e9), elapsed / frames * 1e6)
                results["bytes_per_chunk"] = (counted.bytes - before) / frames
                results["chunks"] = frames
            await ws.close()

    benchmark.pedantic(lambda: asyncio.run(run()), rounds=1, warmup_rounds=0)
    figures = {k: round(v, 1) for k, v in results.items()}
    benchmark.extra_info.update(figures)
    RESULTS[f"stream compression={'on' if compress else 'off'}"] = figures


@pytest.mark.parametrize("compress", [False, True], ids=["off", "on"])
def test_memory_per_connection(benchmark, tmp_path, compress):
    connections = 100
    results: dict[str, float] = {}

    async def run() -> None:
        settings = make_settings(data_dir=tmp_path, gateway=GatewayConfig(port=0, ws_compression=compress))
        async with running_gateway(settings) as gw:
            tracemalloc.start()
            before = tracemalloc.take_snapshot()
            clients = []
            for i in range(connections):
                ws = await websockets.connect(gw.url, compression="deflate")
                await ws.recv()
                await ws.send(json.dumps({"id": "p", "method": "status"}))
                await ws.recv()  # one real answer: the server's compressor now exists
                clients.append(ws)
            after = tracemalloc.take_snapshot()
            tracemalloc.stop()
            grown = sum(s.size_diff for s in after.compare_to(before, "filename")
                        if "aiohttp" in (s.traceback[0].filename if s.traceback else ""))
            results["server_kib_per_connection"] = grown / connections / 1024
            for ws in clients:
                await ws.close()

    benchmark.pedantic(lambda: asyncio.run(run()), rounds=1, warmup_rounds=0)
    figures = {k: round(v, 1) for k, v in results.items()}
    benchmark.extra_info.update(figures)
    RESULTS[f"memory compression={'on' if compress else 'off'}"] = figures


def teardown_module(module: Any) -> None:
    if RESULTS:
        print("\n\n/ws compression (benches/bench_ws_compression.py)")
        for name, figures in RESULTS.items():
            print(f"  {name:32s} " + "  ".join(f"{k}={v}" for k, v in figures.items()))
