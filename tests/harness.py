"""Test harness: a real gateway on a random loopback port and a real WebSocket client.

::

    async with running_gateway(settings) as gw:
        async with gw.client() as c:
            frames = await c.chat({"channel": "t", "account": "a", "content": "hi"})
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Iterable

import aiohttp
from aiohttp.test_utils import TestServer

from exoclaw_core.config import GatewayConfig, Settings
from exoclaw_core.gateway.app import build_app
from exoclaw_core.plugins import make_plugin_manager
from exoclaw_core.runtime import Runtime
from exoclaw_core.store.sqlite import open_store
from exoclaw_hooks import AgentConfig


def make_settings(
    *,
    provider: str = "echo",
    model: str = "echo",
    agents: Iterable[AgentConfig] = (),
    data_dir: str | Path = ".",
    echo_delay: float = 0.0,
    **kwargs: Any,
) -> Settings:
    """Settings built directly (no file): one default agent plus ``agents``.

    Any other keyword is a plugin's table as TOML would give it, e.g.
    ``budgets={"session": 100}``, ``plugins=[{"name": "echo", "path": ...}]``.
    """
    default = AgentConfig(
        id="default", provider=provider, model=model,
        options={"chunk_delay_s": echo_delay} if provider == "echo" else {},
    )
    all_agents = {default.id: default}
    for a in agents:
        all_agents[a.id] = a
    gateway = kwargs.pop("gateway", GatewayConfig(port=0))
    core = {k: kwargs.pop(k) for k in ("hooks", "config_dir", "config_path", "env", "default_agent") if k in kwargs}
    core.setdefault("default_agent", "default")
    sections = {name: as_table(value) for name, value in kwargs.items()}
    return Settings(gateway=gateway, agents=all_agents, data_dir=str(data_dir), sections=sections, **core)


def as_table(value: Any) -> Any:
    """A plugin's config object (its own dataclass) written as the TOML data it comes from.

    Keys left at ``None`` are left out, tuples become lists; plain data passes.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: as_table(getattr(value, f.name)) for f in dataclasses.fields(value)
                if getattr(value, f.name) is not None}
    if isinstance(value, (list, tuple)):
        return [as_table(v) for v in value]
    if isinstance(value, dict) or hasattr(value, "items"):
        return {k: as_table(v) for k, v in value.items()}
    return value


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
class Gateway:
    rt: Runtime
    server: TestServer

    @property
    def url(self) -> str:
        return str(self.server.make_url("/ws")).replace("http://", "ws://")

    @property
    def http_url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

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
async def running_gateway(
    settings: Settings,
    *,
    plugins: Iterable[tuple[str, Any]] = (),
    load_entrypoints: bool = True,
    store: Any = None,
    persistent: bool = False,
    **rt_kwargs: Any,
) -> AsyncIterator[Gateway]:
    pm = make_plugin_manager(settings, load_entrypoints=load_entrypoints, plugins=plugins)
    if store is None:
        store = open_store(Path(settings.data_dir) if persistent else None)
    rt = Runtime(settings, pm, store, **rt_kwargs)
    rt.retry_policy.base_s = 0.01
    app = await build_app(rt)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield Gateway(rt, server)
    finally:
        await server.close()


def parse_config(
    text: str, *, env: dict[str, str] | None = None, config_dir: str = ".", path_label: str = "config.toml",
    overrides: dict[str, Any] | None = None, plugins: Iterable[tuple[str, Any]] = (),
) -> tuple[Settings, dict[str, Any]]:
    """A config file's text validated exactly as ``serve`` would: the settings, and each plugin table as built."""
    from exoclaw_core.bootstrap import check_source
    from exoclaw_core.config.load import Source

    settings, pm = check_source(
        Source(text, path_label, config_dir, None), env={} if env is None else env, overrides=overrides,
        plugins=plugins,
    )
    return settings, pm.sections


def parse_settings(text: str, **kwargs: Any) -> Settings:
    return parse_config(text, **kwargs)[0]
