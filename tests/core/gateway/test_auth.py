"""Authentication and origin checks of ``/ws`` (SPEC §4), over a real socket."""

from __future__ import annotations

import json

import aiohttp
import pytest

from exoclaw_core.gateway.auth import is_loopback_host, origin_allowed, token_matches
from exoclaw_core.config import GatewayConfig
from tests.harness import make_settings, running_gateway

TOKEN = "tok-7f3a9c2e-very-secret"


def _settings(tmp_path, **gw):
    return make_settings(data_dir=tmp_path, gateway=GatewayConfig(bind="0.0.0.0", port=0, token=TOKEN, **gw))


async def _raw(gw, headers=None):
    session = aiohttp.ClientSession()
    ws = await session.ws_connect(gw.url, headers=headers or {})
    return session, ws


async def _expect_auth_failed(ws):
    msg = await ws.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.TEXT
    assert json.loads(msg.data) == {"error": "auth_failed", "code": 4001}
    msg = await ws.receive(timeout=5)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert ws.close_code == 4001


async def test_valid_token_gets_the_hello_frame(tmp_path):
    async with running_gateway(_settings(tmp_path)) as gw:
        async with gw.client(token=TOKEN) as c:
            assert c.hello["ok"] is True
            assert (await c.request("ping"))["result"] == "pong"


@pytest.mark.parametrize(
    "first",
    [
        json.dumps({"token": "wrong"}),
        json.dumps({"token": ""}),
        json.dumps({"token": 12345}),
        json.dumps({"tok": TOKEN}),
        "not json at all",
        json.dumps([TOKEN]),
        # a request before authentication is not processed: it is a failed auth
        json.dumps({"id": "1", "method": "ping"}),
    ],
)
async def test_bad_first_frames_fail_with_4001(tmp_path, first):
    async with running_gateway(_settings(tmp_path)) as gw:
        session, ws = await _raw(gw)
        try:
            await ws.send_str(first)
            await _expect_auth_failed(ws)
        finally:
            await session.close()


async def test_other_members_of_the_auth_frame_are_ignored(tmp_path):
    async with running_gateway(_settings(tmp_path)) as gw:
        session, ws = await _raw(gw)
        try:
            await ws.send_str(json.dumps({"token": TOKEN, "id": "1", "method": "ping"}))
            assert json.loads((await ws.receive(timeout=5)).data)["ok"] is True
        finally:
            await session.close()


async def test_silence_times_out_with_4001(tmp_path):
    async with running_gateway(_settings(tmp_path)) as gw:
        gw.rt.auth_timeout_s = 0.3  # the real default is 10 s
        session, ws = await _raw(gw)
        try:
            await _expect_auth_failed(ws)
        finally:
            await session.close()


async def test_token_is_required_on_loopback_too(tmp_path):
    settings = make_settings(data_dir=tmp_path, gateway=GatewayConfig(port=0, token=TOKEN))
    async with running_gateway(settings) as gw:
        session, ws = await _raw(gw)
        try:
            await ws.send_str(json.dumps({"id": "1", "method": "status"}))
            await _expect_auth_failed(ws)
        finally:
            await session.close()


async def test_no_token_means_no_auth_on_loopback(tmp_path):
    async with running_gateway(make_settings(data_dir=tmp_path)) as gw:
        async with gw.client() as c:
            assert c.hello["ok"] is True


@pytest.mark.parametrize(
    "origin, allowed, ok",
    [
        ("http://localhost:3000", (), True),
        ("http://127.0.0.1:7200", (), True),
        ("http://[::1]:8080", (), True),
        ("https://evil.example", (), False),
        ("null", (), False),
        ("https://app.example.com", ("https://app.example.com",), True),
        ("https://app.example.com", ("https://other.example.com",), False),
    ],
)
async def test_browser_origins(tmp_path, origin, allowed, ok):
    settings = make_settings(data_dir=tmp_path, gateway=GatewayConfig(port=0, allowed_origins=allowed))
    async with running_gateway(settings) as gw:
        async with aiohttp.ClientSession() as session:
            if ok:
                async with session.ws_connect(gw.url, headers={"Origin": origin}) as ws:
                    assert json.loads((await ws.receive(timeout=5)).data)["ok"] is True
            else:
                with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                    await session.ws_connect(gw.url, headers={"Origin": origin})
                assert err.value.status == 403


def test_helpers():
    assert is_loopback_host("127.0.0.2") and is_loopback_host("::1") and is_loopback_host("[::1]")
    assert is_loopback_host("localhost") and not is_loopback_host("0.0.0.0") and not is_loopback_host("10.0.0.1")
    assert origin_allowed(None, ()) and not origin_allowed("http://x.y", ())
    assert token_matches("abc", "abc") and not token_matches("abc", "abd")
    assert not token_matches("abc", "") and not token_matches("abc", None) and not token_matches("", "")
