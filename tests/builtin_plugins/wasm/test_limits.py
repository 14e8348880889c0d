"""A fair sandbox: WASM calls bounded per plugin and per session; a hostile tool holds only its own slots.

The probe server answers ``together`` only when N requests of one key are
in flight at once and records the most that ever were
(``max_in_flight``), so the bounds are checked by counting, not by a clock.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from types import SimpleNamespace

from builtin_plugins.wasm.plugin import WORKER_NICENESS, WasmPlugin
from exoclaw_hooks import AgentConfig, Route, Settings, ToolCall, ToolContext, ToolResult, WasmPluginConfig
from tests.fakes.http_probe import start_probe
from tests.harness import make_settings, running_gateway


def chat(content: str, account: str) -> dict[str, str]:
    return {"channel": "t", "account": account, "content": content}


def results_of(frames: list[dict]) -> list[dict]:
    return [f["data"] for f in frames if f.get("event") == "tool_result"]


def tools_module(wasm_build, **kw) -> WasmPluginConfig:
    return WasmPluginConfig(name="testtools", path=str(wasm_build["testtools"]), capabilities=("http:127.0.0.1",),
                            **{"timeout_ms": 10_000, **kw})


def echo(wasm_build) -> WasmPluginConfig:
    return WasmPluginConfig(name="echo", path=str(wasm_build["echo"]))


def together(probe, key: str, n: int) -> str:
    return "/tool http " + json.dumps({"url": probe.url(f"/together?key={key}&n={n}")})


async def test_one_session_runs_at_most_its_share_of_a_plugins_calls(wasm_build, tmp_path):
    settings = make_settings(data_dir=tmp_path, plugins=(
        tools_module(wasm_build, max_concurrency=8, max_concurrency_per_session=2),))
    async with start_probe(wait_s=1.0) as probe, running_gateway(settings) as gw:
        async with gw.client() as c:
            frames = await c.chat(chat("\n".join([together(probe, "one", 3)] * 4), "alice"))
            assert [r["content"] for r in results_of(frames)] == ["200 alone"] * 4
    assert probe.max_in_flight["one"] == 2


async def test_a_plugins_calls_are_bounded_over_all_sessions_and_sessions_share_them(wasm_build, tmp_path):
    settings = make_settings(data_dir=tmp_path, plugins=(
        tools_module(wasm_build, max_concurrency=4, max_concurrency_per_session=2),))
    async with start_probe(wait_s=1.0) as probe, running_gateway(settings) as gw:

        async def turn(who: str, key: str, n: int) -> list[str]:
            async with gw.client() as c:
                frames = await c.chat(chat("\n".join([together(probe, key, n)] * 2), who))
                return [r["content"] for r in results_of(frames)]

        # two sessions of two calls each: four at once, the plugin's bound
        assert await asyncio.gather(*(turn(who, "four", 4) for who in "ab")) == [["200 together"] * 2] * 2
        # three sessions of two calls each: never more than four at once
        assert await asyncio.gather(*(turn(who, "six", 5) for who in "abc")) == [["200 alone"] * 2] * 3
    assert probe.max_in_flight["four"] == 4 and probe.max_in_flight["six"] == 4


async def test_sixteen_endless_loops_do_not_hold_another_sessions_tool_turn(wasm_build, tmp_path):
    """16 sessions each start an endless loop (60 s timeout); another session's tool turn runs meanwhile.

    Before the bounds, the loops held every worker of the one shared pool:
    the other turn waited for a loop's timeout. The hang guard (30 s) is far
    below that timeout, so waiting would fail the test, not just slow it.
    """
    settings = make_settings(data_dir=tmp_path, plugins=(echo(wasm_build), tools_module(wasm_build, timeout_ms=60_000)))

    async def body() -> None:
        async with running_gateway(settings) as gw:
            gw.rt.shutdown_grace_s = 0.2
            wasm = gw.rt.pm.get_plugin("wasm")
            async with gw.client() as hostile, gw.client() as other:
                for i in range(16):
                    await hostile.send({"id": f"spin{i}", "method": "chat.send", "params": chat("/tool spin", f"h{i}")})
                uses = 0
                while uses < 16:
                    uses += (await hostile.recv()).get("event") == "tool_use"
                while len(wasm._running) < 4:  # the plugin's four slots are spinning
                    await asyncio.sleep(0.01)
                frames = await other.chat(chat('/tool echo {"text": "still here"}', "bob"))
                assert results_of(frames)[0] == {
                    "tool_use_id": results_of(frames)[0]["tool_use_id"], "content": "still here", "is_error": False}
                # all sixteen are still running or waiting: none has finished
                assert len(wasm._running) == 4
                assert wasm._slots["testtools"].waiting_sessions() == 16
            # leaving stops the gateway, which stops the loops (not 60 s each)
        assert not wasm._running

    await asyncio.wait_for(body(), 30)


def _host(wasm_build, **kw) -> SimpleNamespace:
    return SimpleNamespace(settings=Settings(plugins=(tools_module(wasm_build, timeout_ms=60_000, **kw),)), store=None)


def _context(session: str = "a:t:u:main") -> ToolContext:
    return ToolContext(AgentConfig(id="a", provider="echo", model="echo"), Route("a", session))


async def _until_running(plugin: WasmPlugin, n: int) -> None:
    while sum(1 for ctx in plugin._running if ctx._handle is not None) < n:
        await asyncio.sleep(0.01)


async def test_a_stopping_gateway_stops_running_calls(wasm_build):
    plugin, host = WasmPlugin(), _host(wasm_build)
    await plugin.gateway_startup(host)
    pending = asyncio.ensure_future(plugin.dispatch_tool(ToolCall("s1", "spin", {}), _context()))
    await asyncio.wait_for(_until_running(plugin, 1), 10)
    await asyncio.wait_for(plugin.gateway_shutdown(host), 10)
    assert await pending == ToolResult("s1", "tool spin was stopped: the gateway is stopping", True)


async def test_a_cancelled_turn_stops_its_call_and_frees_the_slot(wasm_build):
    plugin, host = WasmPlugin(), _host(wasm_build, max_concurrency=1)
    await plugin.gateway_startup(host)
    try:
        spin = asyncio.ensure_future(plugin.dispatch_tool(ToolCall("s1", "spin", {}), _context()))
        await asyncio.wait_for(_until_running(plugin, 1), 10)
        (ctx,) = plugin._running
        spin.cancel()
        await asyncio.gather(spin, return_exceptions=True)
        assert ctx.failure is not None and ctx.failure.kind == "cancelled"
        # the only slot comes back once the thread noticed: the next call runs
        result = await asyncio.wait_for(plugin.dispatch_tool(ToolCall("c1", "counter", {}), _context("a:t:v:main")), 10)
        assert result == ToolResult("c1", "1", False)
    finally:
        await plugin.gateway_shutdown(host)


async def test_workers_run_at_a_lower_cpu_priority_than_the_gateway(wasm_build):
    plugin, host = WasmPlugin(), _host(wasm_build)
    await plugin.gateway_startup(host)
    try:
        assert await plugin.dispatch_tool(ToolCall("c1", "counter", {}), _context()) == ToolResult("c1", "1", False)
        workers = [t for t in threading.enumerate() if t.name.startswith("exoclaw-wasm")]
        assert workers
        ours = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        assert {os.getpriority(os.PRIO_PROCESS, t.native_id) for t in workers} == {min(19, ours + WORKER_NICENESS)}
    finally:
        await plugin.gateway_shutdown(host)
