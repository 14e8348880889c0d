"""WASM tools through the whole gateway: real modules, real WebSocket, the echo provider's ``/tool``.

The echo provider turns ``/tool NAME {json}`` lines into tool calls and
answers the results with ``Tool NAME returned: <content>`` (``failed`` for
an error result).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from aiohttp import web

from exoclaw_hooks import AgentConfig, make_session_key
from builtin_plugins.router import Binding
from builtin_plugins.wasm.settings import WasmPluginConfig
from tests.harness import events_of, make_settings, running_gateway, text_of


def plugins(wasm_build, **overrides: dict[str, Any]) -> tuple[WasmPluginConfig, ...]:
    """``echo`` and ``kv`` (granted ``store:kv``), with per-plugin overrides by name."""
    base = {
        "echo": dict(path=str(wasm_build["echo"])),
        "kv": dict(path=str(wasm_build["kv"]), capabilities=("store:kv",)),
    }
    for name, extra in overrides.items():
        base.setdefault(name, {}).update(extra)
    return tuple(WasmPluginConfig(name=name, **kw) for name, kw in base.items())


def chat(content: str, account: str = "alice", channel: str = "t") -> dict[str, str]:
    return {"channel": channel, "account": account, "content": content}


def results_of(frames: list[dict]) -> list[dict]:
    return [f["data"] for f in frames if f.get("event") == "tool_result"]


def uses_of(frames: list[dict]) -> list[dict]:
    return [f["data"] for f in frames if f.get("event") == "tool_use"]


async def test_echo_round_trip_through_the_gateway(wasm_build, tmp_path):
    settings = make_settings(data_dir=tmp_path, plugins=plugins(wasm_build))
    async with running_gateway(settings) as gw:
        async with gw.client() as c:
            frames = await c.chat(chat('/tool echo {"text": "hi \\"there\\" ✓"}'))
            events = events_of(frames)
            # the call, its result, then the model's answer, usage, done — in that order
            assert events[events.index("tool_use")] == "tool_use"
            assert events.index("tool_use") < events.index("tool_result") < events.index("usage") < events.index("done")
            assert events[-1] == "done" and "error" not in events
            assert "text" in events[events.index("tool_result"):]
            (use,) = uses_of(frames)
            assert use["name"] == "echo" and use["input"] == {"text": 'hi "there" ✓'}
            assert results_of(frames) == [{"tool_use_id": use["id"], "content": 'hi "there" ✓', "is_error": False}]
            assert 'Tool echo returned: hi "there" ✓' in text_of(frames)

            key = make_session_key("default", "t", "alice", "main")
            history = (await c.request("chat.history", {"session": key}))["result"]
            roles = [m["role"] for m in history]
            assert roles == ["user", "assistant", "tool", "assistant"]
            assert history[1]["tool_calls"] == [{"id": use["id"], "name": "echo", "input": {"text": 'hi "there" ✓'}}]
            assert history[2]["tool_results"] == [
                {"tool_use_id": use["id"], "content": 'hi "there" ✓', "is_error": False}
            ]

            listed = (await c.request("plugin.list"))["result"]
            by_name = {p["name"]: p for p in listed}
            assert by_name["echo"]["kind"] == "tool" and "echo" in by_name["echo"]["tools"]
            assert by_name["kv"]["capabilities"] == ["store:kv"]
            assert (await c.request("status"))["result"]["plugins"] == 2


async def test_every_call_gets_a_fresh_instance_while_kv_persists(wasm_build, tmp_path):
    settings = make_settings(data_dir=tmp_path, plugins=plugins(wasm_build))
    async with running_gateway(settings, persistent=True) as gw:
        async with gw.client() as c:
            for _ in range(3):
                frames = await c.chat(chat("/tool counter"))
                assert results_of(frames)[0]["content"] == "1"  # a module global, never carried over
            frames = await c.chat(chat('/tool remember {"key": "colour", "value": "teal"}'))
            assert results_of(frames)[0] == {"tool_use_id": uses_of(frames)[0]["id"], "content": "ok", "is_error": False}
            frames = await c.chat(chat('/tool recall {"key": "colour"}', account="bob"))
            assert results_of(frames)[0]["content"] == "teal" and not results_of(frames)[0]["is_error"]
        # stored in the store's namespace "kv", nowhere else
        assert gw.rt.store.kv_get("kv", "colour") == "teal"

    # a restart over the same data directory still remembers
    async with running_gateway(settings, persistent=True) as gw:
        async with gw.client() as c:
            frames = await c.chat(chat('/tool recall {"key": "colour"}'))
            assert results_of(frames)[0]["content"] == "teal"
            frames = await c.chat(chat('/tool forget {"key": "colour"}'))
            frames = await c.chat(chat('/tool recall {"key": "colour"}'))
            assert results_of(frames)[0]["is_error"] is True
            assert "nothing stored under key: colour" in results_of(frames)[0]["content"]


async def test_kv_namespace_is_the_granted_one(wasm_build, tmp_path):
    settings = make_settings(
        data_dir=tmp_path,
        plugins=plugins(wasm_build, kv={"capabilities": ("store:notes", "store:other")}),
    )
    async with running_gateway(settings) as gw:
        gw.rt.store.kv_set("kv", "k", "from another namespace")
        async with gw.client() as c:
            frames = await c.chat(chat('/tool remember {"key": "k", "value": "mine"}'))
            assert results_of(frames)[0]["content"] == "ok"
        assert gw.rt.store.kv_get("notes", "k") == "mine"  # the first store: grant
        assert gw.rt.store.kv_get("kv", "k") == "from another namespace"
        assert gw.rt.store.kv_get("other", "k") is None


async def _collect_many(c, rids: list[str], timeout: float = 20.0) -> tuple[dict[str, list[dict]], list[tuple[str, str]]]:
    """Frames per request id, and the arrival order as (id, event)."""
    frames: dict[str, list[dict]] = {r: [] for r in rids}
    order: list[tuple[str, str]] = []
    open_ids = set(rids)
    while open_ids:
        f = await c.recv(timeout)
        rid = f.get("id")
        if rid not in frames:
            continue
        frames[rid].append(f)
        order.append((rid, f.get("event", "response")))
        if f.get("event") == "done" or "event" not in f:
            open_ids.discard(rid)
    return frames, order


async def test_endless_loop_stops_at_timeout_and_other_sessions_go_on(wasm_build, tmp_path):
    settings = make_settings(data_dir=tmp_path, plugins=plugins(wasm_build, echo={"timeout_ms": 1500}))
    async with running_gateway(settings) as gw:
        async with gw.client() as c:
            started = time.monotonic()
            await c.send({"id": "spin", "method": "chat.send", "params": chat("/tool spin", account="alice")})
            # wait until the spin is running before the other session starts
            while True:
                f = await c.recv()
                if f.get("id") == "spin" and f.get("event") == "tool_use":
                    break
            await c.send({"id": "other", "method": "chat.send", "params": chat('/tool echo {"text": "still here"}', account="bob")})
            frames, order = await _collect_many(c, ["spin", "other"])
            elapsed = time.monotonic() - started

            # the other session's whole turn (a tool call included) finished while the spin was running
            assert order.index(("other", "done")) < order.index(("spin", "tool_result"))
            assert results_of(frames["other"])[0]["content"] == "still here"
            (spin,) = results_of(frames["spin"])
            assert spin["is_error"] is True
            assert spin["content"] == "tool spin timed out after 1500ms"
            assert 1.4 < elapsed < 10
            assert events_of(frames["spin"])[-1] == "done" and "error" not in events_of(frames["spin"])
            assert (await c.request("ping"))["result"] == "pong"


async def test_misbehaving_tools_become_error_results(wasm_build, tmp_path):
    settings = make_settings(
        data_dir=tmp_path,
        plugins=plugins(wasm_build, echo={"memory_max_pages": 32, "max_output_bytes": 1000}),
    )
    async with running_gateway(settings) as gw:
        async with gw.client() as c:
            frames = await c.chat(chat('/tool trap\n/tool fail\n/tool big {"n": 5000}\n/tool bomb\n/tool big {"n": 900}'))
            res = results_of(frames)
            assert [r["is_error"] for r in res] == [True, True, True, True, False]
            assert res[0]["content"].startswith("tool trap crashed (trap")
            assert res[1]["content"] == "tool fail failed: deliberate failure"
            assert res[2]["content"].startswith("tool big output too large (")
            assert "> max_output_bytes 1000)" in res[2]["content"]
            assert res[3]["content"] == "tool bomb ran out of memory"
            assert res[4]["content"] == "x" * 900  # under the cap (the cap counts the JSON output)
            text = text_of(frames)
            assert "Tool trap failed: tool trap crashed" in text and "Tool fail failed: tool fail failed" in text
            assert events_of(frames)[-1] == "done" and "error" not in events_of(frames)

            # the gateway did not notice: the same plugin still works
            frames = await c.chat(chat('/tool echo {"text": "ok"}'))
            assert results_of(frames)[0] == {"tool_use_id": uses_of(frames)[0]["id"], "content": "ok", "is_error": False}


async def test_trap_message_names_the_cause(wasm_build, tmp_path):
    settings = make_settings(data_dir=tmp_path, plugins=plugins(wasm_build))
    async with running_gateway(settings) as gw:
        async with gw.client() as c:
            frames = await c.chat(chat("/tool trap"))
            content = results_of(frames)[0]["content"]
            # the reason comes from Extism's log; without it the message is just "(trap)"
            assert content in ("tool trap crashed (trap)", "tool trap crashed (trap: wasm `unreachable` instruction executed)")


async def test_unknown_tool_and_agent_allowlist(wasm_build, tmp_path):
    restricted = AgentConfig(id="restricted", provider="echo", model="echo", tools=("echo", "recall"),
                             options={"chunk_delay_s": 0})
    settings = make_settings(
        data_dir=tmp_path, plugins=plugins(wasm_build), agents=[restricted],
        bindings=(Binding(channel="r", agent_id="restricted"),),
    )
    async with running_gateway(settings) as gw:
        async with gw.client() as c:
            frames = await c.chat(chat("/tool nope"))
            assert results_of(frames)[0]["content"] == "unknown tool: nope"
            assert results_of(frames)[0]["is_error"] is True

            frames = await c.chat(chat('/tool counter\n/tool echo {"text": "allowed"}', channel="r"))
            res = results_of(frames)
            assert res[0] == {"tool_use_id": uses_of(frames)[0]["id"], "content": "unknown tool: counter", "is_error": True}
            assert res[1]["content"] == "allowed" and res[1]["is_error"] is False

            frames = await c.chat(chat("/tool counter"))  # the default agent may use every tool
            assert results_of(frames)[0]["content"] == "1"

        wasm = gw.rt.pm.get_plugin("wasm")
        assert [t.name for t in wasm.list_tools(restricted)] == ["echo", "recall"]
        every = [t.name for t in wasm.list_tools(settings.agents["default"])]
        assert every == ["echo", "counter", "trap", "fail", "spin", "big", "bomb", "remember", "recall", "forget"]
        spec = wasm.list_tools(restricted)[0]
        assert spec.input_schema["required"] == ["text"] and spec.description


async def test_several_tool_calls_run_concurrently(wasm_build, tmp_path):
    settings = make_settings(data_dir=tmp_path, plugins=plugins(wasm_build, echo={"timeout_ms": 800}))
    async with running_gateway(settings) as gw:
        async with gw.client() as c:
            started = time.monotonic()
            frames = await c.chat(chat('/tool spin\n/tool spin\n/tool echo {"text": "a"}\n/tool echo {"text": "b"}'))
            elapsed = time.monotonic() - started
            res = results_of(frames)
            assert [r["content"] for r in res] == [
                "tool spin timed out after 800ms", "tool spin timed out after 800ms", "a", "b",
            ]
            assert [r["tool_use_id"] for r in res] == [u["id"] for u in uses_of(frames)]
            # one after the other would take 1.6 s at least
            assert elapsed < 1.5, elapsed


async def test_max_tool_iterations_is_enforced(wasm_build, tmp_path):
    strict = AgentConfig(id="strict", provider="echo", model="echo", max_tool_iterations=0,
                         options={"chunk_delay_s": 0})
    settings = make_settings(
        data_dir=tmp_path, plugins=plugins(wasm_build), agents=[strict],
        bindings=(Binding(channel="s", agent_id="strict"),),
    )
    async with running_gateway(settings) as gw:
        async with gw.client() as c:
            frames = await c.chat(chat('/tool echo {"text": "x"}', channel="s"))
            errors = [f["data"] for f in frames if f.get("event") == "error"]
            assert errors and "max_tool_iterations" in errors[0]
            assert "tool_result" not in events_of(frames)
            assert events_of(frames)[-1] == "done"


# ---------------------------------------------------------------- fetch and http: grants


@pytest.fixture
async def loopback_server():
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello from loopback")

    app = web.Application()
    app.router.add_get("/hello", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("grant, reachable", [(("http:127.0.0.1",), True), (("http:*",), True),
                                              (("http:example.org",), False), ((), False)])
async def test_fetch_reaches_loopback_only_when_granted(wasm_build, tmp_path, loopback_server, grant, reachable):
    fetch = WasmPluginConfig(name="fetch", path=str(wasm_build["fetch"]), capabilities=grant, timeout_ms=10_000)
    settings = make_settings(data_dir=tmp_path, plugins=(fetch,))
    async with running_gateway(settings) as gw:
        async with gw.client() as c:
            frames = await c.chat(chat("/tool fetch " + json.dumps({"url": loopback_server + "/hello"})))
            (res,) = results_of(frames)
            if reachable:
                assert res == {"tool_use_id": uses_of(frames)[0]["id"], "content": "hello from loopback", "is_error": False}
            else:
                assert res["is_error"] is True
                assert res["content"].startswith("tool fetch: HTTP request denied or failed"), res["content"]
        report = {p["name"]: p for p in gw.rt.plugin_report()}
        assert report["fetch"]["capabilities"] == list(grant)
        assert report["fetch"]["not_granted"] == ([] if grant == ("http:*",) else ["http:*"])


async def test_event_loop_stays_free_during_calls(wasm_build, tmp_path):
    """While four endless loops run, the loop keeps ticking (calls are in threads)."""
    settings = make_settings(data_dir=tmp_path, plugins=plugins(wasm_build, echo={"timeout_ms": 600}))
    async with running_gateway(settings) as gw:
        async with gw.client() as c:
            task = asyncio.ensure_future(c.chat(chat("/tool spin\n/tool spin\n/tool spin\n/tool spin")))
            worst = 0.0
            while not task.done():
                t = time.monotonic()
                await asyncio.sleep(0.01)
                worst = max(worst, time.monotonic() - t)
            frames = await task
            assert all(r["is_error"] for r in results_of(frames)) and len(results_of(frames)) == 4
            assert worst < 0.3, worst
