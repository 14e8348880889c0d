"""Authentication and origin checks of ``/ws`` (SPEC §4), over a real socket."""

from __future__ import annotations

import asyncio
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


# --------------------------------------------------------------------------
# failed logins are slowed per client address (issue 16: 3,460 tries/s over WS, 13,500/s over HTTP)


class FakeTime:
    """A clock that only moves when the test says so; the throttle's sleeps are recorded, not waited."""

    def __init__(self):
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        await asyncio.sleep(0)  # still a suspension point, as a real sleep is


def throttle(t: FakeTime, **kw):
    from exoclaw_core.gateway.auth import AuthThrottle

    return AuthThrottle(burst=3, per_s=2.0, max_wait_s=2.0, clock=t.clock, sleep=t.sleep, **kw)


async def attempt(th, addr: str, ok: bool):
    ticket = await th.admit(addr)
    if ticket is None:
        return None
    th.settle(ticket, ok)
    return ok


async def test_the_throttle_paces_an_address_after_its_burst_and_refuses_a_long_queue():
    t = FakeTime()
    th = throttle(t)
    assert [await attempt(th, "10.0.0.1", False) for _ in range(3)] == [False] * 3 and t.slept == []
    assert await attempt(th, "10.0.0.1", False) is False and t.slept == [0.5]  # one try per 1/per_s
    assert await attempt(th, "10.0.0.2", True) is True and t.slept == [0.5]  # another address: untouched
    # many at once from one address: they queue, each a slot later; past max_wait_s, refused untried
    tickets = await asyncio.gather(*(th.admit("10.0.0.1") for _ in range(8)))
    assert t.slept[1:] == [1.0, 1.5, 2.0]  # level 4 after the paced failure: slots at 1, 1.5, 2 s
    assert [x is None for x in tickets] == [False] * 3 + [True] * 5
    assert all(x.reserved for x in tickets[:3])
    assert th.retry_after("10.0.0.1") == 2.5  # (7 failures and held slots + 1 - burst) / per_s
    # a quiet address recovers: failures decay at per_s
    t.now += 60
    assert th.retry_after("10.0.0.1") == 0 and await attempt(th, "10.0.0.1", True) is True


async def test_the_throttle_counts_an_ipv6_host_by_its_64_and_forgets_old_addresses():
    from exoclaw_core.gateway.auth import address_key

    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert address_key("::ffff:10.0.0.7") == "10.0.0.7" and address_key(None) == "-"
    t = FakeTime()
    th = throttle(t, max_addresses=100)
    for i in range(1000):
        await attempt(th, f"10.1.{i // 256}.{i % 256}", False)
    assert len(th._levels) <= 100


def strict(th) -> None:
    """The app's throttle, made strict for a test: past 3 failures, no waiting, only refusals."""
    th.burst, th.per_s, th.max_wait_s = 3, 0.01, 0.0


async def test_ws_logins_past_the_burst_are_refused_with_retry_after_even_with_the_right_token(tmp_path):
    from exoclaw_core.gateway.keys import AUTH_THROTTLE

    async with running_gateway(_settings(tmp_path)) as gw:
        strict(gw.server.app[AUTH_THROTTLE])
        for _ in range(3):
            session, ws = await _raw(gw)
            await ws.send_str(json.dumps({"token": "guess"}))
            await _expect_auth_failed(ws)
            await session.close()
        session, ws = await _raw(gw)
        await ws.send_str(json.dumps({"token": TOKEN}))  # right, but this address must wait its turn
        refusal = json.loads((await ws.receive(timeout=5)).data)
        assert refusal["error"] == "auth_failed" and refusal["code"] == 4001 and refusal["retry_after"] >= 1
        await session.close()


async def test_http_logins_past_the_burst_get_429_with_retry_after(tmp_path):
    from exoclaw_core.gateway.keys import AUTH_THROTTLE

    async with running_gateway(_settings(tmp_path)) as gw:
        strict(gw.server.app[AUTH_THROTTLE])
        statuses = []
        async with aiohttp.ClientSession() as s:
            for key in ["a", "b", "c", "d", TOKEN]:
                async with s.get(gw.http_url + "/v1/models", headers={"Authorization": f"Bearer {key}"}) as r:
                    statuses.append(r.status)
                    if r.status == 429:
                        body = await r.json()
                        assert body["error"]["code"] == "auth_rate_limited" and int(r.headers["Retry-After"]) >= 1
    assert statuses == [401, 401, 401, 429, 429]
