"""Clients that close mid-write (issue 22): no unretrieved task, no traceback, no error line.

A real compressing client (the ``websockets`` library negotiates
permessage-deflate as browsers do) closes — abruptly or politely — while a
large reply is streamed to it, with and without ``[gateway]
ws_compression``; the same on the OpenAI face's SSE. Afterwards the log
holds no ``level=error``, no traceback and no "never retrieved", a
disconnect is at most one info/debug line, and the turn is stored (SPEC §4:
a turn whose client went away completes and is stored).
"""

from __future__ import annotations

import asyncio
import gc
import json

import pytest
import websockets

from exoclaw_core.config import GatewayConfig
from tests.harness import captured_log, make_settings, running_gateway

#: words of 30,000 characters: every chunk of the echo reply is a frame > 16 KiB (compressed in a task)
BIG = " ".join(["x" * 30_000] * 12)


@pytest.fixture
def log_stream():
    with captured_log() as stream:
        yield stream


async def settle() -> None:
    """Let pending writes and their tasks finish, and have asyncio report what nobody retrieved."""
    for _ in range(5):
        await asyncio.sleep(0.05)
        gc.collect()


def assert_clean(log: str) -> None:
    bad = [line for line in log.splitlines()
           if "level=error" in line or "Traceback" in line or "never retrieved" in line or "level=critical" in line]
    assert not bad, "\n".join(bad[:5])


async def wait_stored(gw, session: str, timeout: float = 20.0) -> list[dict]:
    async with gw.client() as c:
        for _ in range(int(timeout / 0.05)):
            history = (await c.request("chat.history", {"session": session}))["result"]
            if len(history) >= 2:
                return history
            await asyncio.sleep(0.05)
    raise AssertionError(f"the turn of {session} was not stored")


@pytest.mark.parametrize("server_compression", [True, False])
@pytest.mark.parametrize("how", ["abort", "close"])
async def test_a_compressing_client_that_leaves_mid_reply_leaves_a_clean_log(tmp_path, log_stream, server_compression,
                                                                            how):
    settings = make_settings(data_dir=tmp_path, echo_delay=0.002,
                             gateway=GatewayConfig(port=0, ws_compression=server_compression))
    async with running_gateway(settings) as gw:
        async with gw.client() as c:  # a stored turn whose history is a large answer
            assert (await c.chat({"channel": "t", "account": "a", "peer": "old", "content": BIG}))[-1]["event"] == "done"
        for i in range(4):
            ws = await websockets.connect(gw.url, max_size=None, compression="deflate")
            negotiated = bool(ws.protocol.extensions)
            assert negotiated == server_compression  # the server's setting decides
            await ws.recv()  # hello
            # a large streamed reply, and large answers to other requests in flight
            await ws.send(json.dumps({"id": "big", "method": "chat.send",
                                      "params": {"channel": "t", "account": "a", "peer": f"p{i}", "content": BIG}}))
            for n in range(3):
                await ws.send(json.dumps({"id": f"h{n}", "method": "chat.history",
                                          "params": {"session": "default:t:a:old"}}))
                await ws.send(json.dumps({"id": "i" * 100_000 + str(n), "method": "ping"}))
            first = json.loads(await ws.recv())
            assert first["id"] in ("big", "h0", "h1", "h2") or first["id"].startswith("iii")
            if how == "abort":
                ws.transport.abort()
            else:
                await ws.close()
        for i in range(4):
            history = await wait_stored(gw, f"default:t:a:p{i}")
            assert history[0]["content"] == BIG and BIG in history[1]["content"]
        await settle()
    await settle()
    log = log_stream.getvalue()
    assert_clean(log)
    closes = [line for line in log.splitlines() if "event=ws_closed" in line]
    assert closes and all("level=debug" in line for line in closes)


async def test_sse_client_that_leaves_mid_stream_leaves_a_clean_log(tmp_path, log_stream):
    async with running_gateway(make_settings(data_dir=tmp_path, echo_delay=0.002), listener=True) as gw:
        port = int(gw.http_url.rsplit(":", 1)[1])
        for i in range(4):
            body = json.dumps({"model": "exoclaw", "stream": True, "user": f"u{i}",
                               "messages": [{"role": "user", "content": BIG}]}).encode()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(body) + body)
            assert b"data: " in await reader.readuntil(b"data: ")
            writer.transport.abort()
        for i in range(4):
            history = await wait_stored(gw, f"default:openai:u{i}:main")
            assert BIG in history[1]["content"]
        await settle()
    await settle()
    log = log_stream.getvalue()
    assert_clean(log)
    assert "event=client_gone stream=sse" in log
