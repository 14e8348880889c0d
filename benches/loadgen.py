#!/usr/bin/env python
"""Load generator for the end-to-end gateway benchmarks; runs as its own process.

It talks to a real ``exoclaw serve`` over WebSocket (aiohttp) and prints JSON
lines on stdout: ``{"event": "measuring"}`` when its warm-up is over and the
measured window starts and ``{"event": "measured"}`` when it ends (whoever
drives it samples the gateway's CPU time then), and last ``{"event": "result", ...}``. It measures its own CPU time
(user + system, ``os.times()``) over the measured window.

Sub-commands::

    turns     N clients, each its own connection and session, send chat.send
              back to back (the next as soon as the previous one's ``done``
              arrived) for a fixed time; turns/s, turn latency, and with
              --stamped the per-chunk latency (see fake-llm); --also-url
              spreads the clients over several gateways
    ttft      one client, turns one after another: time from sending
              chat.send to the first ``text`` frame; with --stamped also the
              provider's own time to first chunk, read from the chunk
    sessions  M distinct sessions do one turn each (C at a time), then all
              connections are closed (the sessions go idle)
    hold      open N connections, wait for each hello, print
              {"event": "ready"}, then hold them idle until stdin closes
    relay     a bare WebSocket → HTTP streaming relay (no gateway logic), the
              floor the per-chunk latency is compared with; prints
              ``listening on ws://...``
    fake-llm  the project's fake LLM server (tests/fakes/llm_server.py) in
              this process, answering every request with the same streamed
              reply of --chunks text chunks; prints ``listening on URL``

Clock: ``time.monotonic_ns()`` (CLOCK_MONOTONIC) is one clock for every
process on the machine, so a timestamp written by the fake LLM server into a
chunk can be subtracted from the time this process received the frame.

Stamped chunks (``fake-llm --stamped``): every text chunk carries
``T<20 digits>``, the fake server's ``monotonic_ns`` taken immediately
before it wrote that chunk's SSE event to the socket; the first chunk also
carries ``A<20 digits>``, when the request reached the fake server's
handler. ``receive_ns - T`` is the latency the gateway added to that chunk
(the gateway's HTTP read, SSE parsing, the agent loop, JSON framing, the
WebSocket send, and this client's read of the frame); ``T - A`` of the first
chunk is the provider's own time to first token.

Every loop is bounded in time; only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]

ARRIVE_MARK = b"A" + b"@" * 20
STAMP_MARK = b"T" + b"#" * 20
_STAMP = re.compile(r"T(\d{20})")
_ARRIVE = re.compile(r"A(\d{20})")


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def summary_ms(values_ns: list[int]) -> dict[str, Any]:
    """count, p50, p90, p99, max, mean in milliseconds."""
    v = sorted(values_ns)
    if not v:
        return {"count": 0}
    ms = lambda x: None if x is None else round(x / 1e6, 3)  # noqa: E731
    return {
        "count": len(v), "p50": ms(percentile(v, 50)), "p90": ms(percentile(v, 90)),
        "p99": ms(percentile(v, 99)), "max": ms(v[-1]), "mean": ms(sum(v) / len(v)),
    }


def connector() -> aiohttp.TCPConnector:
    # the default connector allows 100 connections: a WebSocket holds one for its lifetime
    return aiohttp.TCPConnector(limit=0)


async def connect(session: aiohttp.ClientSession, url: str) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(url, max_msg_size=0, autoping=True)
    hello = await ws.receive(timeout=30)
    if hello.type != aiohttp.WSMsgType.TEXT or not json.loads(hello.data).get("ok"):
        raise RuntimeError(f"no hello from the gateway: {hello.type} {hello.data!r}")
    return ws


class Turn:
    """The frames of one chat.send, up to its done (stamps read from text frames if asked)."""

    __slots__ = ("sent_ns", "first_ns", "done_ns", "texts", "error", "chunk_lat", "arrive_ns", "first_stamp_ns")

    def __init__(self) -> None:
        self.sent_ns = self.first_ns = self.done_ns = 0
        self.texts = 0
        self.error: str | None = None
        self.chunk_lat: list[int] = []
        self.arrive_ns = self.first_stamp_ns = 0


async def one_turn(ws: aiohttp.ClientWebSocketResponse, rid: str, params: dict[str, Any], stamped: bool,
                   timeout: float = 60.0) -> Turn:
    turn = Turn()
    frame = json.dumps({"id": rid, "method": "chat.send", "params": params})
    turn.sent_ns = time.monotonic_ns()
    await ws.send_str(frame)
    while True:
        msg = await ws.receive(timeout=timeout)
        now = time.monotonic_ns()
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise RuntimeError(f"connection ended mid-turn: {msg.type} {msg.data!r}")
        obj = json.loads(msg.data)
        if obj.get("id") != rid:
            continue
        event = obj.get("event")
        if event == "text":
            turn.texts += 1
            if not turn.first_ns:
                turn.first_ns = now
            if stamped:
                text = obj["data"]
                for m in _STAMP.finditer(text):
                    stamp = int(m.group(1))
                    turn.chunk_lat.append(now - stamp)
                    if not turn.first_stamp_ns:
                        turn.first_stamp_ns = stamp
                if not turn.arrive_ns:
                    a = _ARRIVE.search(text)
                    if a:
                        turn.arrive_ns = int(a.group(1))
        elif event == "done":
            turn.done_ns = now
            return turn
        elif event == "error":
            turn.error = str(obj.get("data"))
        elif event is None:  # a plain response: the request was refused
            turn.error = str(obj.get("error"))
            turn.done_ns = now
            return turn


# ---------------------------------------------------------------- turns


async def cmd_turns(args: argparse.Namespace) -> dict[str, Any]:
    state = {"measuring": False, "stop": False}
    turns = 0
    errors: list[str] = []
    turn_ns: list[int] = []
    ttft_ns: list[int] = []
    chunk_ns: list[int] = []
    text_frames = 0
    connected = 0

    async def client(i: int, session: aiohttp.ClientSession, ready: asyncio.Event) -> None:
        nonlocal turns, text_frames, connected
        urls = [args.url, *args.also_url]  # several gateways: client i talks to the (i mod n)th
        ws = await connect(session, urls[i % len(urls)])
        connected += 1
        try:
            await ready.wait()
            if args.stagger:  # spread the clients' phases evenly over --stagger seconds
                await asyncio.sleep(args.stagger * i / args.clients)
            n = 0
            while not state["stop"]:
                n += 1
                params = {"channel": "bench", "account": f"c{i}", "content": f"{args.content} #{n}"}
                t = await one_turn(ws, f"r{n}", params, args.stamped)
                if not state["measuring"]:
                    continue
                turns += 1
                text_frames += t.texts
                if t.error:
                    if len(errors) < 20:
                        errors.append(t.error)
                    continue
                turn_ns.append(t.done_ns - t.sent_ns)
                if t.first_ns:
                    ttft_ns.append(t.first_ns - t.sent_ns)
                chunk_ns.extend(t.chunk_lat)
        finally:
            await ws.close()

    async with aiohttp.ClientSession(connector=connector()) as session:
        ready = asyncio.Event()
        tasks = [asyncio.create_task(client(i, session, ready)) for i in range(args.clients)]
        # all connections open before the first turn
        deadline = time.monotonic() + 60
        while connected < args.clients:
            for t in tasks:
                if t.done():
                    t.result()  # a failed connect raises here
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {connected} of {args.clients} clients connected in 60 s")
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        ready.set()
        await asyncio.sleep(args.warmup)
        state["measuring"] = True
        emit({"event": "measuring"})
        t0, c0 = time.monotonic(), cpu_s()
        await asyncio.sleep(args.seconds)
        state["measuring"] = False
        elapsed, cpu = time.monotonic() - t0, cpu_s() - c0
        emit({"event": "measured"})
        state["stop"] = True
        results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)
        failures = [repr(r) for r in results if isinstance(r, BaseException)]
    return {
        "clients": args.clients, "seconds": round(elapsed, 3), "turns": turns,
        "turns_per_s": round(turns / elapsed, 1), "text_frames": text_frames,
        "frames_per_s": round(text_frames / elapsed, 1),
        "errors": len(errors), "error_samples": errors[:5], "client_failures": failures[:5],
        "loadgen_cpu_s": round(cpu, 3), "loadgen_cores": round(cpu / elapsed, 3),
        "turn_ms": summary_ms(turn_ns), "ttft_ms": summary_ms(ttft_ns), "chunk_ms": summary_ms(chunk_ns),
    }


# ---------------------------------------------------------------- ttft


async def cmd_ttft(args: argparse.Namespace) -> dict[str, Any]:
    total: list[int] = []
    provider: list[int] = []
    added: list[int] = []
    errors: list[str] = []
    async with aiohttp.ClientSession(connector=connector()) as session:
        ws = await connect(session, args.url)
        try:
            for n in range(args.warmup_turns + args.turns):
                params = {"channel": "bench", "account": "ttft", "peer": f"p{n % 50}", "content": f"{args.content} #{n}"}
                t = await one_turn(ws, f"t{n}", params, args.stamped)
                if n == args.warmup_turns:
                    emit({"event": "measuring"})
                if n < args.warmup_turns:
                    continue
                if t.error or not t.first_ns:
                    errors.append(t.error or "no text")
                    continue
                whole = t.first_ns - t.sent_ns
                total.append(whole)
                if args.stamped and t.arrive_ns and t.first_stamp_ns:
                    own = t.first_stamp_ns - t.arrive_ns
                    provider.append(own)
                    added.append(whole - own)
                if args.pause_ms:
                    await asyncio.sleep(args.pause_ms / 1000)
        finally:
            await ws.close()
    return {
        "turns": len(total), "errors": len(errors), "error_samples": errors[:5],
        "client_ttft_ms": summary_ms(total), "provider_ttft_ms": summary_ms(provider),
        "added_ttft_ms": summary_ms(added if args.stamped else total),
    }


# ---------------------------------------------------------------- sessions / hold


async def cmd_sessions(args: argparse.Namespace) -> dict[str, Any]:
    next_index = 0
    errors: list[str] = []
    done = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal next_index, done
        ws = await connect(session, args.url)
        try:
            while next_index < args.sessions:
                i = next_index
                next_index += 1
                params = {"channel": "bench", "account": f"{args.prefix}{i}", "content": f"{args.content} #{i}"}
                t = await one_turn(ws, f"s{i}", params, False)
                if t.error:
                    errors.append(t.error)
                done += 1
        finally:
            await ws.close()

    t0, c0 = time.monotonic(), cpu_s()
    async with aiohttp.ClientSession(connector=connector()) as session:
        await asyncio.wait_for(asyncio.gather(*(worker(session) for _ in range(args.concurrency))), 600)
    return {"sessions": done, "errors": len(errors), "error_samples": errors[:5],
            "seconds": round(time.monotonic() - t0, 3), "loadgen_cpu_s": round(cpu_s() - c0, 3)}


async def cmd_hold(args: argparse.Namespace) -> dict[str, Any]:
    async with aiohttp.ClientSession(connector=connector()) as session:
        sockets = await asyncio.gather(*(connect(session, args.url) for _ in range(args.connections)))
        emit({"event": "ready", "connections": len(sockets)})
        # hold until whoever started us closes our stdin (bounded by --max-seconds)
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.read), args.max_seconds)
        except asyncio.TimeoutError:
            pass
        closed = sum(1 for ws in sockets if ws.closed)
        await asyncio.gather(*(ws.close() for ws in sockets))
    return {"connections": len(sockets), "closed_by_server": closed}


# ---------------------------------------------------------------- fake LLM server


def make_fake_server(args: argparse.Namespace) -> Any:
    sys.path.insert(0, str(REPO))
    from tests.fakes.llm_script import Reply
    from tests.fakes.llm_server import FakeLLMServer

    if args.stamped:
        chunks = [(ARRIVE_MARK + b" " if i == 0 else b"") .decode() + STAMP_MARK.decode() + " " for i in range(args.chunks)]
    else:
        chunks = [f"chunk{i:02d} " for i in range(args.chunks)]
    reply = Reply(text_chunks=chunks, usage=(100, 5 * args.chunks), delay_s=args.ttft_ms / 1000,
                  chunk_delay_s=args.chunk_delay_ms / 1000, pings=False)

    class BenchLLMServer(FakeLLMServer):
        """Always the same reply; nothing recorded; text chunks stamped when they are written."""

        in_flight = 0
        max_in_flight = 0
        served = 0

        def _next(self, api: str, body: dict[str, Any]) -> Any:
            return reply

        async def _handle(self, api: str, request: Any) -> Any:
            request["bench_arrive_ns"] = time.monotonic_ns()
            cls = type(self)
            cls.in_flight += 1
            cls.max_in_flight = max(cls.max_in_flight, cls.in_flight)
            try:
                return await super()._handle(api, request)
            finally:
                cls.in_flight -= 1
                cls.served += 1
                self.requests.clear()  # a long run must not keep every request

        async def _sleep(self, seconds: float) -> None:
            if seconds > 0:
                await asyncio.sleep(seconds)

        async def _write(self, request: Any, chunks: list[bytes], delay: float, *, status: int = 200,
                         ctype: str = "text/event-stream; charset=utf-8", headers: Any = (),
                         finish: bool = True) -> Any:
            from aiohttp import web

            resp = web.StreamResponse(status=status, headers={"content-type": ctype, "cache-control": "no-cache",
                                                              **dict(headers)})
            await resp.prepare(request)
            arrive = b"A%020d" % request["bench_arrive_ns"]
            for i, chunk in enumerate(chunks):
                if i and delay:
                    await asyncio.sleep(delay)
                if STAMP_MARK in chunk:
                    chunk = chunk.replace(ARRIVE_MARK, arrive).replace(STAMP_MARK, b"T%020d" % time.monotonic_ns())
                await resp.write(chunk)
            if finish:
                await resp.write_eof()
            return resp

    return BenchLLMServer(host="127.0.0.1", port=args.port)


async def cmd_fake_llm(args: argparse.Namespace) -> None:
    server = make_fake_server(args)
    await server.start()
    print(f"listening on {server.url}", flush=True)
    loop = asyncio.get_running_loop()
    try:
        # serve until stdin closes (the driver ends us), at most --max-seconds
        await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.read), args.max_seconds)
    except asyncio.TimeoutError:
        pass
    cls = type(server)
    print(json.dumps({"event": "stats", "served": cls.served, "max_in_flight": cls.max_in_flight}), flush=True)
    await server.close()


# ---------------------------------------------------------------- bare relay (the floor)


async def cmd_relay(args: argparse.Namespace) -> None:
    """The least any gateway must do: WebSocket chat.send in → streamed HTTP POST out → text frames back.

    No routing, store, hooks, logging or metrics: one aiohttp server, one
    shared client session, a naive SSE split. Run at the same load as the
    gateway, its per-chunk latency is the floor set by the machine (three
    processes, two socket hops, the event loops' wake-ups) and by aiohttp.
    """
    from aiohttp import web

    upstream = args.upstream.rstrip("/") + "/v1/messages"
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    async def turn(ws: web.WebSocketResponse, rid: str, content: str) -> None:
        body = {"model": "relay", "max_tokens": 100, "stream": True,
                "messages": [{"role": "user", "content": content}]}
        async with http.post(upstream, json=body, headers={"x-api-key": "relay"}) as resp:
            buf = b""
            async for data in resp.content.iter_any():
                buf += data
                *events, buf = buf.split(b"\n\n")
                for event in events:
                    if b"text_delta" in event:
                        payload = json.loads(event.split(b"data: ", 1)[1])
                        await ws.send_str(json.dumps({"id": rid, "event": "text", "data": payload["delta"]["text"]}))
        await ws.send_str(json.dumps({"id": rid, "event": "done"}))

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(json.dumps({"ok": True, "version": "relay"}))
        tasks = set()
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                req = json.loads(msg.data)
                task = asyncio.create_task(turn(ws, req["id"], req["params"]["content"]))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.port)
    await site.start()
    port = runner.addresses[0][1]
    print(f"listening on ws://127.0.0.1:{port}/ws", flush=True)
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.read), args.max_seconds)
    except asyncio.TimeoutError:
        pass
    await http.close()
    await runner.cleanup()


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="loadgen", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    def client_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--url", required=True, help="the gateway's ws://127.0.0.1:PORT/ws")
        sp.add_argument("--content", default="hello from the load generator")
        sp.add_argument("--stamped", action="store_true", help="read fake-llm timestamps from text chunks")

    sp = sub.add_parser("turns")
    client_args(sp)
    sp.add_argument("--clients", type=int, default=50)
    sp.add_argument("--seconds", type=float, default=5.0)
    sp.add_argument("--warmup", type=float, default=1.0)
    sp.add_argument("--stagger", type=float, default=0.0,
                    help="client i starts its first turn i/N of this many seconds late (no lockstep bursts)")
    sp.add_argument("--also-url", action="append", default=[],
                    help="another gateway's URL (repeatable): the clients are spread over all of them")

    sp = sub.add_parser("ttft")
    client_args(sp)
    sp.add_argument("--turns", type=int, default=300)
    sp.add_argument("--warmup-turns", type=int, default=30)
    sp.add_argument("--pause-ms", type=float, default=2.0)

    sp = sub.add_parser("sessions")
    client_args(sp)
    sp.add_argument("--sessions", type=int, default=1000)
    sp.add_argument("--concurrency", type=int, default=20)
    sp.add_argument("--prefix", default="idle")

    sp = sub.add_parser("hold")
    sp.add_argument("--url", required=True)
    sp.add_argument("--connections", type=int, default=200)
    sp.add_argument("--max-seconds", type=float, default=120.0)

    sp = sub.add_parser("fake-llm")
    sp.add_argument("--port", type=int, default=0)
    sp.add_argument("--chunks", type=int, default=20)
    sp.add_argument("--chunk-delay-ms", type=float, default=0.0)
    sp.add_argument("--ttft-ms", type=float, default=0.0, help="wait before the response headers")
    sp.add_argument("--stamped", action="store_true")
    sp.add_argument("--max-seconds", type=float, default=900.0)

    sp = sub.add_parser("relay")
    sp.add_argument("--upstream", required=True, help="the fake LLM server's base URL")
    sp.add_argument("--port", type=int, default=0)
    sp.add_argument("--max-seconds", type=float, default=900.0)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.cmd in ("fake-llm", "relay"):
        asyncio.run(cmd_fake_llm(args) if args.cmd == "fake-llm" else cmd_relay(args))
        return 0
    command = {"turns": cmd_turns, "ttft": cmd_ttft, "sessions": cmd_sessions, "hold": cmd_hold}[args.cmd]
    result = asyncio.run(command(args))
    emit({"event": "result", **result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
