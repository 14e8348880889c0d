"""Shared pieces of the metering tests: a scripted provider plugin, a tool plugin, a fake clock."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any, Iterable

from exoclaw_hooks import AgentConfig, ToolResult, ToolSpec, Usage, hookimpl
from builtin_plugins.metering.estimator import Sample
from exoclaw_hooks.testing import Script, ScriptedProvider
from tests.harness import WSClient, make_settings

UTC = dt.timezone.utc
CHAT = {"channel": "test", "account": "alice", "content": "hello"}


class FakeClock:
    """An injectable UTC clock: ``clock.now`` is what the gateway sees; tests move it."""

    def __init__(self, iso: str):
        self.now = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))

    def __call__(self) -> dt.datetime:
        return self.now

    def set(self, iso: str) -> None:
        self.now = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))


class ScriptedPlugin:
    """Registers a :class:`ScriptedProvider` as ``name`` (``trylast``: it wins over a builtin of that name)."""

    def __init__(self, provider: ScriptedProvider, name: str = "scripted"):
        self.provider, self.name = provider, name

    @hookimpl(trylast=True)
    def register_providers(self, register: Any) -> None:
        register(self.name, self.provider.factory)


class LookupTool:
    """One tool, ``lookup``, that answers ``found it``."""

    @hookimpl
    def list_tools(self, agent: Any) -> list[ToolSpec]:
        return [ToolSpec("lookup", "Look a thing up", {"type": "object", "properties": {"q": {"type": "string"}}})]

    @hookimpl
    def dispatch_tool(self, call: Any, context: Any) -> Any:
        if call.name != "lookup":
            return None
        return ToolResult(call.id, "found it")


def scripted_settings(model: str = "m1", *, agents: Iterable[AgentConfig] = (), **kwargs: Any):
    return make_settings(provider="scripted", model=model, agents=agents, **kwargs)


def scripted(n: int, usage: Usage = Usage(10, 5), **kw: Any) -> list[Script]:
    return [Script(text=["ok"], usage=usage, **kw) for _ in range(n)]


def metering(gw: Any) -> Any:
    """The gateway's metering plugin instance (loaded from its entry point)."""
    plugin = gw.rt.pm.get_plugin("metering")
    assert plugin is not None, "the metering plugin is not loaded"
    return plugin


def fix_estimate(gw: Any, tokens: int) -> None:
    """Make every input estimate ``tokens`` (the estimator's learning is tested on its own)."""
    metering(gw).estimator.estimate = lambda provider, model, request: (tokens, Sample(100, 0, 1))


def error_of(frames: list[dict[str, Any]]) -> str | None:
    return next((f["data"] for f in frames if f.get("event") == "error"), None)


def usage_of(frames: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The turn's usage event, its metering figures only (the context's composition is memory's)."""
    usage = next((f["data"] for f in frames if f.get("event") == "usage"), None)
    return None if usage is None else {k: v for k, v in usage.items() if k != "context"}


async def chat_many(c: WSClient, params_list: list[dict[str, Any]], timeout: float = 60.0) -> list[list[dict[str, Any]]]:
    """Send several ``chat.send`` at once on one connection; collect each id's frames up to ``done``."""
    ids = [c.next_id() for _ in params_list]
    for rid, params in zip(ids, params_list):
        await c.send({"id": rid, "method": "chat.send", "params": params})
    frames: dict[str, list[dict[str, Any]]] = {rid: [] for rid in ids}
    open_ids = set(ids)

    async def pump() -> None:
        while open_ids:
            frame = await c.recv(timeout)
            rid = frame.get("id")
            if rid in frames:
                frames[rid].append(frame)
                if frame.get("event") == "done" or "event" not in frame:
                    open_ids.discard(rid)

    await asyncio.wait_for(pump(), timeout)
    return [frames[rid] for rid in ids]


def dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True)
