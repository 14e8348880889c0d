"""``POST /webhook/{channel}`` with a Python channel plugin: statuses, inbox, delivery, secrets.

The WASM channel plugins (mock, telegram) are tested end to end in
``tests/channels/``; here the core's part is pinned down on its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web

from exoclaw_core.channels import host_allowed, substitute
from exoclaw_hooks import ChannelError, Ignore, IncomingMessage, OutgoingRequest, hookimpl
from exoclaw_core.config import GatewayConfig
from tests.harness import make_settings, running_gateway

SECRET = "bot-secret-5f1e2d3c4b"


class Platform:
    """A fake messaging platform on loopback that records what it receives."""

    def __init__(self, statuses=()):
        self.received: list[dict] = []
        self.statuses = list(statuses)
        self.port = 0
        self.arrived = asyncio.Event()

    async def handler(self, request: web.Request) -> web.Response:
        self.received.append({"path": request.path, "headers": dict(request.headers), "body": await request.json()})
        status = self.statuses.pop(0) if self.statuses else 200
        if status < 300:
            self.arrived.set()
        return web.json_response({"ok": status < 300}, status=status)


@asynccontextmanager
async def platform(statuses=()):
    p = Platform(statuses)
    app = web.Application()
    app.router.add_post("/{tail:.*}", p.handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    p.port = site._server.sockets[0].getsockname()[1]
    try:
        yield p
    finally:
        await runner.cleanup()


class ChatChannel:
    """A channel plugin written in Python, as a third party could."""

    def __init__(self, port: int, host: str = "127.0.0.1"):
        self.port, self.host = port, host
        self.parsed = 0

    @hookimpl
    def parse_incoming(self, request):
        if request.channel != "chat":
            return None
        if request.headers.get("x-check") != "ok":
            raise ChannelError(401, "authenticity check failed")
        self.parsed += 1
        data = json.loads(request.body)
        if data.get("skip"):
            return Ignore()
        if "text" not in data:
            raise ChannelError(400, "missing field: text")
        return IncomingMessage(
            channel="chat", account=data["user"], peer=data.get("room", "main"), content=data["text"],
            message_id=data.get("id"), reply_to={"room": data.get("room", "main")},
        )

    @hookimpl
    def format_outgoing(self, reply):
        if reply.channel != "chat":
            return None
        return OutgoingRequest(
            method="POST",
            url=f"http://{self.host}:{self.port}/bot{{{{secret:token}}}}/send",
            headers={"content-type": "application/json"},
            body={"room": reply.reply_to["room"], "text": reply.content},
            secrets={"token": SECRET},
            allowed_hosts=("127.0.0.1",),
        )


async def post(gw, channel, body, headers=None):
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{gw.http_url}/webhook/{channel}", data=body if isinstance(body, bytes) else json.dumps(body),
                          headers={"x-check": "ok", **(headers or {})}) as r:
            return r.status, await r.json()


async def wait_for(predicate, timeout=10.0):
    for _ in range(int(timeout / 0.02)):
        if await predicate():
            return True
        await asyncio.sleep(0.02)
    return False


async def test_round_trip_secret_substituted_only_on_the_wire(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    async with platform() as p:
        chan = ChatChannel(p.port)
        async with running_gateway(make_settings(data_dir=tmp_path), plugins=[("chan", chan)]) as gw:
            status, body = await post(gw, "chat", {"user": "u1", "room": "r9", "text": "hello hook", "id": "m1"})
            assert status == 200 and body["ok"] is True
            await asyncio.wait_for(p.arrived.wait(), 10)
            counts = await gw.rt.store.inbox_counts()
            assert await wait_for(lambda: _replied(gw))
            async with gw.client() as c:
                sessions = (await c.request("session.list"))["result"]
                status_result = (await c.request("status"))["result"]
    got = p.received[0]
    assert got["path"] == f"/bot{SECRET}/send"
    assert got["body"]["room"] == "r9" and "You said: hello hook" in got["body"]["text"]
    assert [s["key"] for s in sessions] == ["default:chat:u1:r9"]
    assert status_result["deliveries"]["replied"] == 1
    # (the fake platform's own access log shows the path it received: not ours)
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name != "aiohttp.access")
    assert SECRET not in ours and "{{secret:token}}" in ours
    assert counts["pending"] + counts["replied"] == 1


async def _replied(gw):
    return (await gw.rt.store.inbox_counts())["replied"] == 1


async def test_statuses_404_401_400_413_and_ignore(tmp_path):
    settings = make_settings(data_dir=tmp_path, gateway=GatewayConfig(port=0, max_message_bytes=2000))
    async with platform() as p:
        chan = ChatChannel(p.port)
        async with running_gateway(settings, plugins=[("chan", chan)]) as gw:
            assert (await post(gw, "nope", {"text": "x"}))[0] == 404
            status, body = await post(gw, "chat", {"user": "u", "text": "x"}, headers={"Origin": "https://evil.example"})
            assert status == 403 and chan.parsed == 0  # a browser page cannot drive it
            status, body = await post(gw, "chat", {"user": "u", "text": "x"}, headers={"x-check": "bad"})
            assert status == 401 and body["error"] == "authenticity check failed"
            assert chan.parsed == 0  # refused before any parsing
            status, body = await post(gw, "chat", {"user": "u"})
            assert status == 400 and body["error"] == "missing field: text"
            status, _ = await post(gw, "chat", {"user": "u", "text": "y" * 5000})
            assert status == 413
            status, body = await post(gw, "chat", {"skip": True})
            assert status == 200 and body["ignored"] is True
            assert (await gw.rt.store.inbox_counts())["pending"] == 0
            assert p.received == []


async def test_a_platform_retry_is_processed_once(tmp_path):
    async with platform() as p:
        chan = ChatChannel(p.port)
        async with running_gateway(make_settings(data_dir=tmp_path), plugins=[("chan", chan)]) as gw:
            msg = {"user": "u1", "text": "once", "id": "same-id"}
            results = await asyncio.gather(*(post(gw, "chat", msg) for _ in range(5)))
            assert all(s == 200 for s, _ in results)
            assert sum(1 for _, b in results if b.get("duplicate")) == 4
            assert await wait_for(lambda: _replied(gw))
            await asyncio.sleep(0.2)
            async with gw.client() as c:
                history = (await c.request("chat.history", {"session": "default:chat:u1:main"}))["result"]
    assert len(p.received) == 1 and len(history) == 2


async def test_refusals_are_retried_then_recorded_as_failed(tmp_path, caplog):
    async with platform(statuses=[503, 502, 500, 500, 500]) as p:
        chan = ChatChannel(p.port)
        async with running_gateway(make_settings(data_dir=tmp_path), plugins=[("chan", chan)]) as gw:
            gw.rt.channels.retry.base_s = 0.01
            await post(gw, "chat", {"user": "u1", "text": "retry me", "id": "r1"})

            async def failed():
                return (await gw.rt.store.inbox_counts())["failed"] == 1

            assert await wait_for(failed)
            async with gw.client() as c:
                status = (await c.request("status"))["result"]
    assert len(p.received) == 4  # bounded attempts
    assert status["deliveries"]["failed"] == 1
    assert "event=reply_failed" in caplog.text


async def test_a_retry_that_succeeds_is_sent_once(tmp_path):
    async with platform(statuses=[503]) as p:
        chan = ChatChannel(p.port)
        async with running_gateway(make_settings(data_dir=tmp_path), plugins=[("chan", chan)]) as gw:
            gw.rt.channels.retry.base_s = 0.01
            await post(gw, "chat", {"user": "u1", "text": "second time lucky", "id": "r2"})
            assert await wait_for(lambda: _replied(gw))
    assert len(p.received) == 2


async def test_ungranted_host_is_refused_and_nothing_is_sent(tmp_path, caplog):
    async with platform() as p:
        chan = ChatChannel(p.port, host="localhost")  # granted only 127.0.0.1
        async with running_gateway(make_settings(data_dir=tmp_path), plugins=[("chan", chan)]) as gw:
            await post(gw, "chat", {"user": "u1", "text": "hi", "id": "x1"})

            async def failed():
                return (await gw.rt.store.inbox_counts())["failed"] == 1

            assert await wait_for(failed)
    assert p.received == []
    assert "event=delivery_refused" in caplog.text and "not granted" in caplog.text
    assert SECRET not in caplog.text


async def test_acknowledged_messages_are_answered_after_a_restart(tmp_path):
    async with platform() as p:
        chan = ChatChannel(p.port)
        settings = make_settings(data_dir=tmp_path)
        # first life: the message is stored, then the gateway stops before answering
        async with running_gateway(settings, plugins=[("chan", chan)], persistent=True) as gw:
            gw.rt.channels.submit = lambda item: None  # the turn never starts
            status, _ = await post(gw, "chat", {"user": "u1", "text": "survive", "id": "k1"})
            assert status == 200
        assert p.received == []
        async with running_gateway(settings, plugins=[("chan", chan)], persistent=True) as gw:
            assert await wait_for(lambda: _replied(gw))
        # a third life sends nothing again
        async with running_gateway(settings, plugins=[("chan", chan)], persistent=True) as gw:
            await asyncio.sleep(0.2)
    assert len(p.received) == 1 and "survive" in p.received[0]["body"]["text"]


def test_substitute_and_host_checks():
    assert substitute({"a": ["{{secret:x}}/y"], "{{secret:x}}": 1}, {"x": "S"}) == {"a": ["S/y"], "S": 1}
    assert host_allowed("https://api.telegram.org/bot1/x", ("api.telegram.org",))
    assert not host_allowed("https://api.telegram.org.evil.com/", ("api.telegram.org",))
    assert not host_allowed("file:///etc/passwd", ("*",))
    assert host_allowed("http://127.0.0.1:9/x", ("*",))
