"""A real gateway on a random loopback port, and a WebSocket client for it — for a plugin's tests.

::

    from exoclaw_hooks.testing.gateway import run_gateway

    async def test_my_plugin(tmp_path):
        config = f'[audit]\npath = "{tmp_path}/audit.jsonl"\n'
        async with run_gateway(config, plugins=[AuditPlugin()]) as gw:
            reply = await gw.chat("hello")
        assert reply.done and "hello" in reply.text

The config is validated exactly as ``exoclaw serve`` does (your plugin's own
table included), the installed plugins and the builtins are loaded (the
offline ``echo`` provider answers unless you configure another), and the
store is in memory unless you give ``data_dir``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import tempfile
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Iterable

import aiohttp
from aiohttp.test_utils import TestServer

from exoclaw_core.bootstrap import check_source
from exoclaw_core.config import Settings
from exoclaw_core.config.load import Source
from exoclaw_core.gateway.app import build_app
from exoclaw_core.runtime import Runtime
from exoclaw_core.store.sqlite import open_store


class WSClient:
    """A WebSocket client of the gateway.

    ``settle`` (the in-process gateway's ``Runtime.settled``) is awaited after
    each ``chat``: learning runs after ``done``, outside the session's lane,
    and a test that asks about what it just said must not race it.
    """

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, settle: Any = None):
        self.ws = ws
        self._ids = itertools.count(1)
        self.hello: dict[str, Any] | None = None
        self.settle = settle

    def next_id(self) -> str:
        return f"r{next(self._ids)}"

    async def send(self, obj: Any) -> None:
        await self.ws.send_str(obj if isinstance(obj, str) else json.dumps(obj))

    async def recv(self, timeout: float = 10.0) -> dict[str, Any]:
        msg = await self.ws.receive(timeout=timeout)
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise AssertionError(f"expected a text frame, got {msg.type!r} {msg.data!r}")
        return json.loads(msg.data)

    async def request(self, method: str, params: Any = None, rid: str | None = None) -> dict[str, Any]:
        rid = rid or self.next_id()
        frame: dict[str, Any] = {"id": rid, "method": method}
        if params is not None:
            frame["params"] = params
        await self.send(frame)
        while True:
            reply = await self.recv()
            if reply.get("id") == rid:
                return reply

    async def chat(self, params: dict[str, Any], rid: str | None = None, timeout: float = 20.0) -> list[dict[str, Any]]:
        """Send ``chat.send`` and collect this id's frames up to ``done`` (or a plain error response)."""
        rid = rid or self.next_id()
        await self.send({"id": rid, "method": "chat.send", "params": params})
        frames = await self.collect(rid, timeout)
        if self.settle is not None:
            await self.settle()
        return frames

    async def collect(self, rid: str, timeout: float = 20.0) -> list[dict[str, Any]]:
        frames = []
        while True:
            frame = await self.recv(timeout)
            if frame.get("id") != rid:
                continue
            frames.append(frame)
            if frame.get("event") == "done" or "event" not in frame:
                return frames


def text_of(frames: list[dict[str, Any]]) -> str:
    return "".join(f["data"] for f in frames if f.get("event") == "text")


def events_of(frames: list[dict[str, Any]]) -> list[str]:
    return [f.get("event", "response") for f in frames]


@dataclasses.dataclass
class Reply:
    """One turn as a client saw it: the streamed text, every frame, the usage and the error if any."""

    frames: list[dict[str, Any]]

    @property
    def text(self) -> str:
        return text_of(self.frames)

    @property
    def error(self) -> str | None:
        return next((f["data"] for f in self.frames if f.get("event") == "error"), None) or (
            self.frames[-1].get("error") if self.frames and "event" not in self.frames[-1] else None)

    @property
    def usage(self) -> dict[str, Any] | None:
        return next((f["data"] for f in self.frames if f.get("event") == "usage"), None)

    @property
    def done(self) -> bool:
        return bool(self.frames) and self.frames[-1].get("event") == "done" and self.error is None


@dataclasses.dataclass
class Gateway:
    rt: Runtime
    server: TestServer | None
    #: the production listener (``serve(..., listener=True)``) instead of aiohttp's TestServer
    listener: Any = None

    @property
    def url(self) -> str:
        return self.http_url.replace("http://", "ws://") + "/ws"

    @property
    def http_url(self) -> str:
        if self.listener is not None:
            return f"http://127.0.0.1:{self.listener.port}"
        return str(self.server.make_url("")).rstrip("/")  # type: ignore[union-attr]

    async def chat(
        self, content: str, *, channel: str = "test", account: str = "tester", peer: str = "main", **params: Any
    ) -> Reply:
        """One turn over a fresh WebSocket connection."""
        async with self.client() as c:
            return Reply(await c.chat({"channel": channel, "account": account, "peer": peer, "content": content,
                                       **params}))

    async def request(self, method: str, params: Any = None) -> Any:
        """One RPC over a fresh connection: its ``result`` (an error response raises ``AssertionError``)."""
        async with self.client() as c:
            reply = await c.request(method, params)
        if reply.get("error"):
            raise AssertionError(f"{method} failed: {reply['error']}")
        return reply["result"]

    @asynccontextmanager
    async def client(self, *, token: str | None = None, headers: dict[str, str] | None = None) -> AsyncIterator[WSClient]:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(self.url, headers=headers or {}) as ws:
                c = WSClient(ws, settle=self.rt.settled)
                if token is not None:
                    await c.send({"token": token})
                c.hello = await c.recv()
                yield c


@asynccontextmanager
async def run_gateway(
    config: str = "",
    *,
    plugins: Iterable[Any] = (),
    env: dict[str, str] | None = None,
    data_dir: str | Path | None = None,
) -> AsyncIterator[Gateway]:
    """A gateway configured by ``config`` (TOML text) with ``plugins`` registered besides the installed ones.

    :param plugins: plugin objects or modules (named after their class or module).
    :param env: the environment the config is read with (default: empty — no API keys, so the
        default agent is the offline echo provider).
    :param data_dir: where the store lives (default: in memory).
    """
    named = [(getattr(p, "__name__", None) or type(p).__name__.lower(), p) for p in plugins]
    with tempfile.TemporaryDirectory() as home:
        environment = {"HOME": home, "EXOCLAW_HOME": str(data_dir or home), **(env or {})}
        settings, pm = check_source(Source(config, "config.toml", home, None), env=environment, plugins=named)
        if settings.store_url:  # [store] url / $EXOCLAW_STORE_URL: the plugin's store, as serve opens it
            from exoclaw_core.bootstrap import open_store_url

            store = await asyncio.to_thread(open_store_url, settings, pm)  # blocking, as before serve's loop
        else:
            store = open_store(Path(data_dir) if data_dir else None)
        try:
            async with serve(settings, pm, store) as gw:
                yield gw
        finally:
            await store.aclose()


@asynccontextmanager
async def serve(settings: Settings, pm: Any, store: Any, *, listener: bool = False, **rt_kwargs: Any) -> AsyncIterator[Gateway]:
    """A runtime for ``settings`` served on 127.0.0.1: through aiohttp's TestServer on a random port, or
    (``listener``) through the gateway's own listener on ``settings.gateway``'s bind and port."""
    rt = Runtime(settings, pm, store, **rt_kwargs)
    rt.retry_policy.base_s = 0.01
    app = await build_app(rt)
    if listener:
        from exoclaw_core.gateway.listener import listen

        served = await listen(app, settings.gateway)
        try:
            yield Gateway(rt, None, served)
        finally:
            await served.close()
        return
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield Gateway(rt, server)
    finally:
        await server.close()
