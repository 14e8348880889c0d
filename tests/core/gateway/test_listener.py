"""exoclaw_core/gateway/listener.py in process: the connection cap, shedding, timeouts, accept errors.

Each test serves a real gateway through the production listener (as
``exoclaw serve`` does) on a random 127.0.0.1 port and talks to it with raw
sockets, so a "half-open" request is exactly what a slow or hostile client
sends: part of a head, or a head announcing a body that never comes.
"""

from __future__ import annotations

import asyncio
import errno
import json

import aiohttp
import pytest

from exoclaw_core.gateway.listener import _ListeningSocket, _LoopErrors
from exoclaw_core.config import GatewayConfig
from tests.harness import captured_log, make_settings, running_gateway

HALF_HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"  # no blank line: the head never ends


def settings_with(tmp_path, **gw):
    return make_settings(data_dir=tmp_path, gateway=GatewayConfig(port=0, **gw))


def port_of(gw) -> int:
    return gw.listener.port


async def half_open(port: int, data: bytes = HALF_HEAD) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    return reader, writer


async def closed_by_server(reader: asyncio.StreamReader, within: float = 10.0) -> bytes:
    """What the server sent before closing (``asyncio.TimeoutError``: it never closed)."""
    return await asyncio.wait_for(reader.read(), within)


async def get(port: int, path: str = "/healthz") -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    raw = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.fixture
def log_stream():
    with captured_log() as stream:
        yield stream


async def test_a_head_that_never_ends_is_closed_after_header_timeout(tmp_path):
    async with running_gateway(settings_with(tmp_path, header_timeout_s=0.2), listener=True) as gw:
        reader, writer = await half_open(port_of(gw))
        assert await closed_by_server(reader) == b""  # closed without an answer
        silent, w2 = await half_open(port_of(gw), b"")
        assert await closed_by_server(silent) == b""
        assert (await get(port_of(gw)))[0] == 200
        writer.close()
        w2.close()


async def test_an_idle_keep_alive_connection_is_closed_after_idle_timeout(tmp_path):
    async with running_gateway(settings_with(tmp_path, idle_timeout_s=0.2), listener=True) as gw:
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(gw))
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and b"connection: close" not in head.lower()
        assert (await closed_by_server(reader)).startswith(b'{"ok": true}')  # the body, then the close
        writer.close()


async def test_at_the_cap_the_oldest_idle_connection_makes_room(tmp_path, log_stream):
    async with running_gateway(settings_with(tmp_path, max_connections=4), listener=True) as gw:
        port = port_of(gw)
        held = [await half_open(port) for _ in range(4)]
        for _ in range(30):  # legitimate clients are served, each one shedding the oldest idle connection
            assert await get(port) == (200, b'{"ok": true}')
        assert await closed_by_server(held[0][0]) == b""
        assert len(gw.listener.guard.conns) <= 4
        for _, writer in held:
            writer.close()
    log = log_stream.getvalue()
    assert log.count("event=connection_evicted") == 1  # 30 evictions, one line (once per interval)
    assert "level=error" not in log


async def test_when_every_connection_is_busy_a_newcomer_gets_a_clear_503(tmp_path):
    async with running_gateway(settings_with(tmp_path, max_connections=2), listener=True) as gw:
        async with aiohttp.ClientSession() as s:
            ws1 = await s.ws_connect(gw.url)
            ws2 = await s.ws_connect(gw.url)
            await ws1.receive()
            await ws2.receive()  # two WebSocket sessions: busy, never shed
            status, body = await get(port_of(gw))
            assert status == 503
            assert json.loads(body)["error"]["code"] == "too_many_connections"
            await ws1.send_json({"id": "1", "method": "ping"})
            assert (await ws1.receive_json())["result"] == "pong"  # the busy ones were not touched
            await ws2.close()
            for _ in range(100):  # the slot frees as soon as the server has seen the close
                if len(gw.listener.guard.conns) < 2:
                    break
                await asyncio.sleep(0.02)
            assert (await get(port_of(gw)))[0] == 200
            await ws1.close()


async def test_a_body_that_never_arrives_is_answered_408(tmp_path):
    async with running_gateway(settings_with(tmp_path, body_timeout_s=0.2), listener=True) as gw:
        for path in ("/v1/chat/completions", "/webhook/mock"):
            reader, writer = await half_open(port_of(gw), f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: "
                                                          "application/json\r\nContent-Length: 100\r\n\r\n{".encode())
            raw = await closed_by_server(reader)
            assert raw.startswith(b"HTTP/1.1 408 "), raw[:80]
            assert b"not received within 0.2 s" in raw
            writer.close()


async def test_a_client_that_never_sends_its_body_or_token_is_shed_for_a_newcomer(tmp_path, log_stream):
    token = "a-token-that-is-long-enough-42"
    starve = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token.encode()
              + b"\r\nContent-Length: 50\r\n\r\n")
    async with running_gateway(settings_with(tmp_path, max_connections=2, token=token), listener=True) as gw:
        port = port_of(gw)
        starving = await half_open(port, starve)
        async with aiohttp.ClientSession() as s:
            silent_ws = await s.ws_connect(gw.url)  # upgraded, but never sends its token
            await asyncio.sleep(0.1)  # both handlers are now waiting on their clients
            assert await get(port) == (200, b'{"ok": true}')  # sheds the starving POST (the oldest)
            assert await closed_by_server(starving[0]) == b""
            starving2 = await half_open(port, starve)  # the cap is full again: silent_ws is now the oldest
            await asyncio.sleep(0.1)
            assert await get(port) == (200, b'{"ok": true}')
            msg = await silent_ws.receive(timeout=5)
            if msg.type == aiohttp.WSMsgType.TEXT:  # the auth failure may still make it out
                assert json.loads(msg.data)["error"] == "auth_failed"
                msg = await silent_ws.receive(timeout=5)
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
        starving[1].close()
        starving2[1].close()
    log = log_stream.getvalue()
    assert "level=error" not in log and "Traceback" not in log


def test_accept_errors_are_logged_once_per_interval(log_stream):
    loop = asyncio.new_event_loop()
    try:
        handler = _LoopErrors(None)
        for _ in range(5000):
            handler(loop, {"message": "socket.accept() out of system resource",
                           "exception": OSError(errno.EMFILE, "Too many open files")})
        handler(loop, {"message": "something else entirely"})
    finally:
        loop.close()
    lines = log_stream.getvalue().splitlines()
    assert len([l for l in lines if "event=accept_failed" in l]) == 1
    assert any("something else entirely" in l and "level=error" in l for l in lines)  # others still reported


def test_the_listening_socket_reports_running_out_once_a_second(monkeypatch):
    import socket

    calls = []

    def out_of_files(self):
        calls.append(1)
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(socket.socket, "accept", out_of_files)
    sock = _ListeningSocket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(OSError) as first:
            sock.accept()
        assert first.value.errno == errno.EMFILE and not isinstance(first.value, BlockingIOError)
        for _ in range(127):  # the rest of asyncio's accept burst: "would block", so it stops
            with pytest.raises(BlockingIOError):
                sock.accept()
        assert len(calls) == 128
    finally:
        sock.close()


async def test_sockets_for_a_name_with_several_addresses_share_one_port(tmp_path):
    async with running_gateway(settings_with(tmp_path, bind="localhost"), listener=True) as gw:
        ports = {s._sock.getsockname()[1] for s in gw.listener.sites}
        assert len(ports) == 1
        assert (await get(gw.listener.port))[0] == 200


def test_the_default_cap_leaves_room_for_an_accept_burst():
    from exoclaw_core.gateway.listener import default_max_connections, free_descriptors

    free = free_descriptors()
    cap = default_max_connections(128)
    assert 16 <= cap <= 10_000
    if free is not None:
        assert cap + 128 < free
