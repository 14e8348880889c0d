"""Test harness: a real gateway on a random loopback port and a real WebSocket client.

::

    async with running_gateway(settings) as gw:
        async with gw.client() as c:
            frames = await c.chat({"channel": "t", "account": "a", "content": "hi"})
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import itertools
import json
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Iterable, Iterator

import aiohttp
from aiohttp.test_utils import TestServer

from exoclaw_core.gateway.app import build_app
from exoclaw_core.logs import setup_logging
from exoclaw_core.plugins import make_plugin_manager
from exoclaw_core.runtime import Runtime
from exoclaw_core.store.sqlite import open_store
from exoclaw_hooks import AgentConfig, GatewayConfig, Settings


def make_settings(
    *,
    provider: str = "echo",
    model: str = "echo",
    agents: Iterable[AgentConfig] = (),
    data_dir: str | Path = ".",
    echo_delay: float = 0.0,
    **kwargs: Any,
) -> Settings:
    """Settings built directly (no file): one default agent plus ``agents``."""
    default = AgentConfig(
        id="default", provider=provider, model=model,
        options={"chunk_delay_s": echo_delay} if provider == "echo" else {},
    )
    all_agents = {default.id: default}
    for a in agents:
        all_agents[a.id] = a
    gateway = kwargs.pop("gateway", GatewayConfig(port=0))
    return Settings(gateway=gateway, agents=all_agents, default_agent="default", data_dir=str(data_dir), **kwargs)


@contextmanager
def captured_log(level: str = "debug", fmt: str = "text") -> Iterator[io.StringIO]:
    """Every log line, formatted as ``exoclaw serve`` writes them, into a string while inside."""
    stream = io.StringIO()
    setup_logging(level, fmt, stream=stream)
    try:
        yield stream
    finally:
        setup_logging("warning", "text")


class WSClient:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse):
        self.ws = ws
        self._ids = itertools.count(1)
        self.hello: dict[str, Any] | None = None

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
        return await self.collect(rid, timeout)

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
class Gateway:
    rt: Runtime
    server: TestServer | None
    #: the production listener (``running_gateway(..., listener=True)``) instead of aiohttp's TestServer
    listener: Any = None

    @property
    def url(self) -> str:
        return self.http_url.replace("http://", "ws://") + "/ws"

    @property
    def http_url(self) -> str:
        if self.listener is not None:
            return f"http://127.0.0.1:{self.listener.port}"
        return str(self.server.make_url("")).rstrip("/")

    @asynccontextmanager
    async def client(self, *, token: str | None = None, headers: dict[str, str] | None = None) -> AsyncIterator[WSClient]:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(self.url, headers=headers or {}) as ws:
                c = WSClient(ws)
                if token is not None:
                    await c.send({"token": token})
                c.hello = await c.recv()
                yield c


@asynccontextmanager
async def running_gateway(
    settings: Settings,
    *,
    plugins: Iterable[tuple[str, Any]] = (),
    load_entrypoints: bool = True,
    store: Any = None,
    persistent: bool = False,
    listener: bool = False,
    **rt_kwargs: Any,
) -> AsyncIterator[Gateway]:
    """``listener=True`` serves through ``exoclaw_core.gateway.listener`` (the connection guards) as
    ``exoclaw serve`` does, on ``settings.gateway``'s bind and port; else through aiohttp's TestServer."""
    pm = make_plugin_manager(settings, load_entrypoints=load_entrypoints, plugins=plugins)
    if store is None:
        store = open_store(Path(settings.data_dir) if persistent else None)
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
