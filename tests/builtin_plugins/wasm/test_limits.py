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

from builtin_plugins.wasm.plugin import WORKER_NICENESS, WasmPlugin
from builtin_plugins.wasm.settings import WasmPluginConfig
from exoclaw_hooks import AgentConfig, Route, ToolCall, ToolContext, ToolResult
from exoclaw_hooks.testing import FakeHost, tables_of
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
    """16 sessions each start an endless loop (10 s timeout); another session's tool turn runs meanwhile.

    Before the bounds, the loops held every worker of the one shared pool:
    the other turn waited for a loop's timeout. The hang guard (30 s) is far
    below what that would take (four rounds of 10 s), so waiting would fail
    the test, not just slow it.
    """
    settings = make_settings(data_dir=tmp_path, plugins=(echo(wasm_build), tools_module(wasm_build, timeout_ms=10_000)))

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
            # leaving stops the gateway: the waiting loops never start, the running ones end at their timeout
        assert not wasm._running

    await asyncio.wait_for(body(), 30)


async def test_one_calls_end_does_not_end_another_call_of_the_same_plugin(wasm_build, tmp_path):
    """Extism stops a call by bumping its engine's epoch; calls sharing an engine all trapped.

    Session b's call waits in the probe; session a's call is denied (the host
    cancels that instance at once); then session c's call releases b's. b's
    call must finish normally (with one engine for all, it trapped as a
    "timeout" as soon as its guest ran again).
    """
    settings = make_settings(data_dir=tmp_path, plugins=(tools_module(wasm_build),))
    async with start_probe(wait_s=20) as probe, running_gateway(settings) as gw:
        async with gw.client() as b, gw.client() as a, gw.client() as c:
            await b.send({"id": "b", "method": "chat.send", "params": chat(together(probe, "bc", 2), "b")})
            while not probe.hits:
                await asyncio.sleep(0.01)
            denied = await a.chat(chat("/tool http " + json.dumps({"url": "http://example.org/"}), "a"))
            assert "HTTP request denied" in results_of(denied)[0]["content"]
            released = await c.chat(chat(together(probe, "bc", 2), "c"))
            assert results_of(released)[0]["content"] == "200 together"
            frames = await b.collect("b")
            assert results_of(frames)[0]["content"] == "200 together"
        assert gw.rt.pm.get_plugin("wasm")._loaded["testtools"].engines.count >= 2


def _host(plugin: WasmPlugin, wasm_build, **kw) -> FakeHost:
    """``plugin`` given the test tools as its [[plugins]], and a host for it."""
    tables_of(plugin)["plugins"].apply((tools_module(wasm_build, **{"timeout_ms": 60_000, **kw}),))
    return FakeHost()


def _context(session: str = "a:t:u:main") -> ToolContext:
    return ToolContext(AgentConfig(id="a", provider="echo", model="echo"), Route("a", session))


def _trickle(probe) -> ToolCall:
    return ToolCall("h1", "http", {"url": probe.url("/trickle")})


async def test_a_stopping_gateway_stops_a_call_waiting_on_the_network(wasm_build):
    plugin = WasmPlugin()
    host = _host(plugin, wasm_build)
    async with start_probe() as probe:
        await plugin.gateway_startup(host)
        pending = asyncio.ensure_future(plugin.dispatch_tool(_trickle(probe), _context()))
        while not probe.hits:
            await asyncio.sleep(0.01)
        await asyncio.wait_for(plugin.gateway_shutdown(host), 10)  # not the call's 60 s
        assert await pending == ToolResult("h1", "tool http was stopped: the gateway is stopping", True)


async def test_a_cancelled_turn_stops_its_call_and_frees_the_slot(wasm_build):
    plugin = WasmPlugin()
    host = _host(plugin, wasm_build, max_concurrency=1)
    await plugin.gateway_startup(host)
    try:
        async with start_probe() as probe:
            waiting = asyncio.ensure_future(plugin.dispatch_tool(_trickle(probe), _context()))
            while not probe.hits:
                await asyncio.sleep(0.01)
            (ctx,) = plugin._running
            waiting.cancel()
            await asyncio.gather(waiting, return_exceptions=True)
            assert ctx.failure is not None and ctx.failure.kind == "cancelled"
            # the only slot comes back once the thread noticed: the next call runs
            result = await asyncio.wait_for(
                plugin.dispatch_tool(ToolCall("c1", "counter", {}), _context("a:t:v:main")), 10)
            assert result == ToolResult("c1", "1", False)
    finally:
        await plugin.gateway_shutdown(host)


async def test_workers_run_at_a_lower_cpu_priority_than_the_gateway(wasm_build):
    plugin = WasmPlugin()
    host = _host(plugin, wasm_build)
    await plugin.gateway_startup(host)
    try:
        assert await plugin.dispatch_tool(ToolCall("c1", "counter", {}), _context()) == ToolResult("c1", "1", False)
        workers = [t for t in threading.enumerate() if t.name.startswith("exoclaw-wasm")]
        assert workers
        ours = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        assert {os.getpriority(os.PRIO_PROCESS, t.native_id) for t in workers} == {min(19, ours + WORKER_NICENESS)}
    finally:
        await plugin.gateway_shutdown(host)
