"""2,000 hostile frames and abrupt closes from compressing clients: the gateway serves on, its log stays clean.

Issue 22's check, run here on every change: malformed JSON, wrong types for
every method, huge and deeply nested values, lone surrogates and control
characters, binary and invalid-UTF-8 frames, frames that break the
WebSocket framing itself, oversized frames, turns cut by an abrupt close,
over connections that negotiate permessage-deflate (the ``websockets``
library, as browsers do). Afterwards: the gateway still answers, and its log
(debug level) has no traceback, no error-level line, no "never retrieved".
"""

from __future__ import annotations

import asyncio
import gc
import json
import random
import re
import warnings

import pytest
import websockets

from exoclaw_core.config import GatewayConfig
from tests.harness import captured_log, make_settings, running_gateway

FRAMES = 2000
PER_CONNECTION = 50

METHODS = ["ping", "status", "chat.send", "plugin.list", "session.list", "chat.history", "budget.status",
           "memory.search", "memory.list", "memory.forget", "nope", ""]
ODD_VALUES = [None, True, -1, 0, 2**70, 1.5e308, "", " ", "\x00", "\ud800", "\x1b[2J", "x" * 70_000, [], {},
              [[[[[]]]]], {"a": {"b": {"c": None}}}, ["\udfff"], "ok", "main", "😀" * 1000]


#: a text frame that is not UTF-8 (the gateway closes such a connection: 1007)
NOT_UTF8 = b'{"id": "u", "method": "ping", "params": {"x": "\xff\xfe\xc0\xaf"}}'


def hostile_text(rng: random.Random) -> str:
    """One hostile frame's payload."""
    kind = rng.randrange(12)
    if kind == 0:
        return rng.choice(["", "{", "}", "[1,", "nul", '{"id": "1", "method": "ping"', "\ufeff{}", "1e99999",
                           '{"id": "1", "method": "ping", "params": NaN}', "{\"id\": \"\\x\"}"])
    if kind == 1:
        return "[" * 100_000 + "]" * 100_000
    if kind == 2:
        return json.dumps({"id": rng.choice([None, 1, [], {}, "x" * 50_000, "\ud800"]), "method": "ping"})
    if kind == 3:
        return json.dumps({"id": "p", "method": rng.choice(METHODS), "params": rng.choice(ODD_VALUES)})
    if kind == 4:
        params = {k: rng.choice(ODD_VALUES) for k in rng.sample(
            ["channel", "account", "content", "peer", "guild", "team", "session", "limit", "agent_id", "query",
             "include_superseded", "id", "fact_id"], rng.randrange(1, 8))}
        return json.dumps({"id": f"h{rng.randrange(10**6)}", "method": rng.choice(METHODS), "params": params})
    if kind == 5:
        return json.dumps({"id": "b", "method": "budget.status", "params": {"session": rng.choice(ODD_VALUES)}})
    if kind == 6:
        return json.dumps({"id": "deep", "method": "chat.send", "params": {
            "channel": "t", "account": "a", "content": {"x": [1] * 10_000}}})
    if kind == 7:
        return json.dumps({"id": "big", "method": "x" * rng.choice([10, 100_000]), "params": {"y": "z" * 100_000}})
    if kind == 8:
        return "x" * rng.choice([1_100_000, 2_000_000])  # over max_message_bytes
    if kind == 9:
        return json.dumps({"id": "t", "method": "chat.send", "params": {
            "channel": "t", "account": f"a{rng.randrange(5)}", "content": "hi " * rng.randrange(1, 3000)}})
    if kind == 10:
        return json.dumps({"id": "m", "method": "memory.search", "params": {
            "query": rng.choice(['"', "*", "a OR", "NEAR(", "\x00", "-", "^", "((", "x" * 10_000])}})
    return json.dumps({"id": "s", "method": "chat.send", "params": {
        "channel": "\x1b]0;evil\x07", "account": "a\r\nlevel=error", "content": "\u202ereversed"}})


#: frames that break WebSocket framing (written raw, masked as a client must)
BROKEN_FRAMES = [
    b"\x83\x80\x00\x00\x00\x00",  # reserved opcode 3
    b"\xa1\x80\x00\x00\x00\x00",  # RSV2 set
    b"\x81\xff\x7f\xff\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00",  # a 2^63-byte frame announced
    b"\x89\xfe\x00\xc8\x00\x00\x00\x00" + b"p" * 200,  # a 200-byte ping (control frames are <= 125)
    b"\x08\x80\x00\x00\x00\x00",  # a fragmented close
    b"\x88\x82\x00\x00\x00\x00\x03\xe7",  # close with the invalid code 999
    b"\x01\x81\x00\x00\x00\x00a",  # a text fragment never finished …
]


async def hostile_connection(url: str, rng: random.Random, frames: int) -> None:
    # max_queue=None: this client never stops reading (with a bounded queue, websockets stops reading what it
    # does not consume, and a polite close then waits out close_timeout behind the unread answers)
    ws = await websockets.connect(url, max_size=None, max_queue=None, compression="deflate", open_timeout=10)
    try:
        await ws.recv()
        for _ in range(frames):
            payload = hostile_text(rng)
            if rng.random() < 0.05:
                await ws.send(payload.encode("utf-8", "surrogatepass"))  # a binary frame
            else:
                await ws.send(payload.encode("utf-8", "surrogatepass"), text=True)
            if rng.random() < 0.3:  # read a little, leave most answers unread
                try:
                    await asyncio.wait_for(ws.recv(), 0.05)
                except (asyncio.TimeoutError, websockets.ConnectionClosed):
                    pass
    except websockets.ConnectionClosed:
        pass  # the gateway may close a connection that broke the protocol (1007, 1009 …)
    finally:
        ending = rng.randrange(4)
        if ending == 0 and not ws.transport.is_closing():
            ws.transport.write(rng.choice(BROKEN_FRAMES))
            await asyncio.sleep(0.01)
        elif ending == 1 and ws.state is websockets.State.OPEN:
            await ws.send(NOT_UTF8, text=True)
            await asyncio.sleep(0.01)
        if ending < 3:
            ws.transport.abort()  # abrupt: no close frame, mid-reply if a turn runs
        else:
            await ws.close()


_LEVEL = re.compile(r"^\S+ level=(\w+) ")


def bad_lines(log: str) -> list[str]:
    """Error-level lines, tracebacks, unretrieved task errors (a client's text inside a line does not count)."""
    return [line for line in log.splitlines()
            if (m := _LEVEL.match(line)) is None or m.group(1) in ("error", "critical")
            or "Traceback" in line or "never retrieved" in line]


@pytest.mark.parametrize("compression, frames", [(True, FRAMES), (False, FRAMES // 2)])
async def test_two_thousand_hostile_frames_and_abrupt_closes_leave_no_traceback(tmp_path, compression, frames):
    """Issue 22's case is the compressing one; the default (no compression) gets half as many."""
    rng = random.Random(22)
    with captured_log() as stream, warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        settings = make_settings(data_dir=tmp_path, echo_delay=0,
                                 gateway=GatewayConfig(port=0, ws_compression=compression))
        async with running_gateway(settings) as gw:
            for _ in range(0, frames, PER_CONNECTION * 4):  # four hostile connections at a time
                await asyncio.gather(*(hostile_connection(gw.url, random.Random(rng.random()), PER_CONNECTION)
                                       for _ in range(4)))
            for raw in BROKEN_FRAMES:  # each framing violation once more, on a connection of its own
                ws = await websockets.connect(gw.url, compression="deflate")
                await ws.recv()
                ws.transport.write(raw)
                try:
                    await asyncio.wait_for(ws.recv(), 2)
                except (asyncio.TimeoutError, websockets.ConnectionClosed):
                    pass
                ws.transport.abort()
            async with gw.client() as c:  # still serving
                assert (await c.request("ping"))["result"] == "pong"
                done = await c.chat({"channel": "t", "account": "after", "content": "still here?"})
                assert done[-1]["event"] == "done" and "still here?" in "".join(
                    f["data"] for f in done if f.get("event") == "text")
            for _ in range(10):
                await asyncio.sleep(0.05)
                gc.collect()
        gc.collect()
    log = stream.getvalue()
    assert not bad_lines(log), "\n".join(bad_lines(log)[:5])
    never_awaited = [str(w.message) for w in seen if "never awaited" in str(w.message)]
    assert not never_awaited, never_awaited[:3]
