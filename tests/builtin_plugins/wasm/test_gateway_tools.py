"""WASM tools through the whole gateway: real modules, real WebSocket, the echo provider's ``/tool``.

The echo provider turns ``/tool NAME {json}`` lines into tool calls and
answers the results with ``Tool NAME returned: <content>`` (``failed`` for
an error result).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest

from exoclaw_core.store import DB_FILENAME
from exoclaw_hooks import AgentConfig, ConfigError, make_person_key, make_session_key
from builtin_plugins.metering.settings import BudgetsConfig
from builtin_plugins.router import Binding
from builtin_plugins.wasm.capabilities import RESERVED_NAMESPACES
from builtin_plugins.wasm.settings import WasmPluginConfig
from tests.fakes.http_probe import start_probe
from tests.harness import events_of, make_settings, running_gateway, text_of
from tests.wasm_plugins.conftest import kv_stored_key


def plugins(wasm_build, **overrides: dict[str, Any]) -> tuple[WasmPluginConfig, ...]:
    """``echo``, ``kv`` (granted ``store:kv``) and the test-only ``testtools``, with per-plugin overrides by name."""
    base = {
        "echo": dict(path=str(wasm_build["echo"])),
        "kv": dict(path=str(wasm_build["kv"]), capabilities=("store:kv",)),
        "testtools": dict(path=str(wasm_build["testtools"])),
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
            assert (await c.request("status"))["result"]["plugins"] == 3


ALICE = make_person_key("default", "t", "alice")


async def test_every_call_gets_a_fresh_instance_while_kv_persists(wasm_build, tmp_path):
    settings = make_settings(data_dir=tmp_path, plugins=plugins(wasm_build))
    async with running_gateway(settings, persistent=True) as gw:
        async with gw.client() as c:
            for _ in range(3):
                frames = await c.chat(chat("/tool counter"))
                assert results_of(frames)[0]["content"] == "1"  # a module global, never carried over
            frames = await c.chat(chat('/tool remember {"key": "colour", "value": "teal"}'))
            assert results_of(frames)[0] == {"tool_use_id": uses_of(frames)[0]["id"], "content": "ok", "is_error": False}
            # alice's memory is alice's: bob, in his own session, finds nothing under her key
            frames = await c.chat(chat('/tool recall {"key": "colour"}', account="bob"))
            assert results_of(frames)[0]["is_error"] is True
            assert "nothing stored under key: colour" in results_of(frames)[0]["content"]
            frames = await c.chat(chat('/tool remember {"key": "colour", "value": "red"}', account="bob"))
            frames = await c.chat(chat('/tool recall {"key": "colour"}'))
            assert results_of(frames)[0]["content"] == "teal" and not results_of(frames)[0]["is_error"]
        # stored in the store's namespace "kv", in alice's own space, nowhere else
        assert gw.rt.store.kv_get("kv", kv_stored_key(ALICE, "colour")) == "teal"
        assert gw.rt.store.kv_get("kv", kv_stored_key(make_person_key("default", "t", "bob"), "colour")) == "red"
        assert gw.rt.store.kv_get("kv", "colour") is None

    # a restart over the same data directory still remembers
    async with running_gateway(settings, persistent=True) as gw:
        async with gw.client() as c:
            frames = await c.chat(chat('/tool recall {"key": "colour"}'))
            assert results_of(frames)[0]["content"] == "teal"
            frames = await c.chat(chat('/tool forget {"key": "colour"}'))
            frames = await c.chat(chat('/tool recall {"key": "colour"}'))
            assert results_of(frames)[0]["is_error"] is True
            assert "nothing stored under key: colour" in results_of(frames)[0]["content"]


async def test_a_tool_is_told_who_calls_it(wasm_build, tmp_path):
    work = AgentConfig(id="work", provider="echo", model="echo", options={"chunk_delay_s": 0})
    settings = make_settings(data_dir=tmp_path, plugins=plugins(wasm_build), agents=[work],
                             bindings=(Binding(channel="tele:gram", agent_id="work"),))
    async with running_gateway(settings) as gw:
        async with gw.client() as c:
            frames = await c.chat({"channel": "tele:gram", "account": "100% ann", "peer": "group:7",
                                   "content": "/tool whoami"})
            assert json.loads(results_of(frames)[0]["content"]) == {
                "agent": "work", "channel": "tele:gram", "account": "100% ann", "peer": "group:7",
                "person": make_person_key("work", "tele:gram", "100% ann"),
            }
            frames = await c.chat(chat("/tool whoami"))
            assert json.loads(results_of(frames)[0]["content"]) == {
                "agent": "default", "channel": "t", "account": "alice", "peer": "main", "person": ALICE}


async def test_kv_namespace_is_the_granted_one(wasm_build, tmp_path):
    settings = make_settings(
        data_dir=tmp_path,
        plugins=plugins(wasm_build, kv={"capabilities": ("store:notes", "store:other")}),
    )
    async with running_gateway(settings) as gw:
        key = kv_stored_key(ALICE, "k")
        gw.rt.store.kv_set("kv", key, "from another namespace")
        async with gw.client() as c:
            frames = await c.chat(chat('/tool remember {"key": "k", "value": "mine"}'))
            assert results_of(frames)[0]["content"] == "ok"
        assert gw.rt.store.kv_get("notes", key) == "mine"  # the first store: grant
        assert gw.rt.store.kv_get("kv", key) == "from another namespace"
        assert gw.rt.store.kv_get("other", key) is None


@pytest.mark.parametrize("namespace", ["metering", "memory", "router"])
async def test_a_reserved_namespace_is_refused_before_the_gateway_starts(wasm_build, tmp_path, namespace):
    settings = make_settings(data_dir=tmp_path, plugins=plugins(wasm_build, kv={"capabilities": (f"store:{namespace}",)}))
    with pytest.raises(ConfigError) as info:
        async with running_gateway(settings):
            pass  # pragma: no cover - never reached
    (problem,) = info.value.problems
    assert f'[[plugins]] #2 (name "kv") capabilities #1: store:{namespace} is the gateway\'s own data' in problem


async def test_every_kv_namespace_the_builtins_use_is_reserved(wasm_build, tmp_path):
    """Whatever the builtins write to the kv store (budgets' period starts …) is in a reserved namespace."""
    settings = make_settings(data_dir=tmp_path, plugins=plugins(wasm_build),
                             budgets=BudgetsConfig(session=1_000_000, daily=1_000_000, monthly=1_000_000))
    async with running_gateway(settings, persistent=True) as gw:
        async with gw.client() as c:
            for text in ("my name is Ann and I live in Paris", '/tool remember {"key": "k", "value": "v"}',
                         "where do I live?"):
                await c.chat(chat(text))
            await c.request("budget.status", {"session": make_session_key("default", "t", "alice", "main")})
    with sqlite3.connect(tmp_path / DB_FILENAME) as db:
        used = {row[0] for row in db.execute("SELECT DISTINCT namespace FROM kv")}
    assert "metering" in used and "kv" in used  # the builtins and the plugin did write
    assert used - {"kv"} <= RESERVED_NAMESPACES


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
    settings = make_settings(data_dir=tmp_path, plugins=plugins(wasm_build, testtools={"timeout_ms": 1500}))
    async with running_gateway(settings) as gw:
        async with gw.client() as c:
            await c.send({"id": "spin", "method": "chat.send", "params": chat("/tool spin", account="alice")})
            # wait until the spin is running before the other session starts
            while True:
                f = await c.recv()
                if f.get("id") == "spin" and f.get("event") == "tool_use":
                    break
            await c.send({"id": "other", "method": "chat.send", "params": chat('/tool echo {"text": "still here"}', account="bob")})
            frames, order = await _collect_many(c, ["spin", "other"])

            # the other session's whole turn (a tool call included) finished while the spin was running
            assert order.index(("other", "done")) < order.index(("spin", "tool_result"))
            assert results_of(frames["other"])[0]["content"] == "still here"
            (spin,) = results_of(frames["spin"])
            assert spin["is_error"] is True
            assert spin["content"] == "tool spin timed out after 1500ms"
            assert events_of(frames["spin"])[-1] == "done" and "error" not in events_of(frames["spin"])
            assert (await c.request("ping"))["result"] == "pong"


async def test_misbehaving_tools_become_error_results(wasm_build, tmp_path):
    settings = make_settings(
        data_dir=tmp_path,
        plugins=plugins(wasm_build, testtools={"memory_max_pages": 32, "max_output_bytes": 1000}),
    )
    async with running_gateway(settings) as gw:
        async with gw.client() as c:
            frames = await c.chat(chat('/tool trap\n/tool fail\n/tool big {"n": 5000}\n/tool bomb\n/tool big {"n": 900}'
                                       '\n/tool recurse'))
            res = results_of(frames)
            assert [r["is_error"] for r in res] == [True, True, True, True, False, True]
            assert res[0]["content"].startswith("tool trap crashed")
            assert res[1]["content"] == "tool fail failed: deliberate failure"
            assert res[2]["content"].startswith("tool big output too large (")
            assert "> max_output_bytes 1000)" in res[2]["content"]
            assert res[3]["content"] == "tool bomb ran out of memory (memory_max_pages 32)"
            assert res[4]["content"] == "x" * 900  # under the cap (the cap counts the JSON output)
            assert res[5]["content"].startswith("tool recurse crashed")
            text = text_of(frames)
            assert "Tool trap failed: tool trap crashed" in text and "Tool fail failed: tool fail failed" in text
            assert events_of(frames)[-1] == "done" and "error" not in events_of(frames)

            # the gateway did not notice: the same plugin still works
            frames = await c.chat(chat('/tool echo {"text": "ok"}'))
            assert results_of(frames)[0] == {"tool_use_id": uses_of(frames)[0]["id"], "content": "ok", "is_error": False}


async def test_traps_are_reported_as_what_they_are(wasm_build, tmp_path):
    """A stack overflow is a stack overflow, an ``unreachable`` an unreachable, a timeout a timeout …

    (The kind comes from the cause Extism logs for the instance; a module that
    imports HTTP is no longer guessed to have failed an HTTP request.)
    """
    settings = make_settings(data_dir=tmp_path, plugins=plugins(wasm_build, testtools={"timeout_ms": 500}))
    async with running_gateway(settings) as gw:
        async with gw.client() as c:
            frames = await c.chat(chat("/tool recurse\n/tool trap\n/tool spin\n/tool fail\n/tool bomb"))
            assert [r["content"] for r in results_of(frames)] == [
                "tool recurse crashed: stack overflow",
                "tool trap crashed: unreachable instruction (the plugin panicked or aborted)",
                "tool spin timed out after 500ms",
                "tool fail failed: deliberate failure",
                "tool bomb ran out of memory (memory_max_pages 256)",
            ]


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
        assert every == ["echo", "remember", "recall", "forget", "counter", "trap", "fail", "spin", "big", "bomb",
                         "recurse", "whoami", "http"]
        spec = wasm.list_tools(restricted)[0]
        assert spec.input_schema["required"] == ["text"] and spec.description


async def test_several_tool_calls_run_concurrently(wasm_build, tmp_path):
    """Two calls of one turn are in flight at once (the probe answers "together" only then)."""
    settings = make_settings(data_dir=tmp_path, plugins=plugins(
        wasm_build, testtools={"timeout_ms": 10_000, "capabilities": ("http:127.0.0.1",)}))
    async with start_probe() as probe, running_gateway(settings) as gw:
        async with gw.client() as c:
            url = json.dumps({"url": probe.url("/together?key=turn&n=2")})
            frames = await c.chat(chat(f'/tool http {url}\n/tool echo {{"text": "a"}}\n/tool http {url}'))
            res = results_of(frames)
            assert [r["content"] for r in res] == ["200 together", "a", "200 together"]
            assert [r["tool_use_id"] for r in res] == [u["id"] for u in uses_of(frames)]
            assert probe.max_in_flight["turn"] == 2


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


@pytest.mark.parametrize("grant, reachable", [(("http:127.0.0.1",), True), (("http:*",), True),
                                              (("http:example.org",), False), ((), False)])
async def test_fetch_reaches_loopback_only_when_granted(wasm_build, tmp_path, grant, reachable):
    fetch = WasmPluginConfig(name="fetch", path=str(wasm_build["fetch"]), capabilities=grant, timeout_ms=10_000)
    settings = make_settings(data_dir=tmp_path, plugins=(fetch,))
    async with start_probe() as probe, running_gateway(settings) as gw:
        async with gw.client() as c:
            frames = await c.chat(chat("/tool fetch " + json.dumps({"url": probe.url("/hello")})))
            (res,) = results_of(frames)
            if reachable:
                assert res == {"tool_use_id": uses_of(frames)[0]["id"], "content": "hello from loopback", "is_error": False}
                assert probe.hits_on("127.0.0.1") == ["/hello"]
            else:
                granted = ", ".join(f"http:{g.split(':', 1)[1]}" for g in grant) or "no http: grant"
                assert res["is_error"] is True
                assert res["content"] == (f"tool fetch: HTTP request denied: http://127.0.0.1:{probe.port}/hello "
                                          f"is not granted ({granted})"), res["content"]
                assert probe.hits == []
        report = {p["name"]: p for p in gw.rt.plugin_report()}
        assert report["fetch"]["capabilities"] == list(grant)
        assert report["fetch"]["not_granted"] == ([] if grant == ("http:*",) else ["http:*"])


async def test_event_loop_stays_free_during_calls(wasm_build, tmp_path):
    """While endless loops run, the event loop answers (calls are in threads)."""
    settings = make_settings(data_dir=tmp_path, plugins=plugins(wasm_build, testtools={"timeout_ms": 3000}))
    async with running_gateway(settings) as gw:
        wasm = gw.rt.pm.get_plugin("wasm")
        async with gw.client() as a, gw.client() as b:
            await a.send({"id": "spins", "method": "chat.send", "params": chat("/tool spin\n/tool spin")})
            while (await a.recv()).get("event") != "tool_use":
                pass
            for _ in range(5):
                assert (await b.request("ping"))["result"] == "pong"
            frames = await b.chat(chat('/tool echo {"text": "meanwhile"}', account="bob"))
            assert results_of(frames)[0]["content"] == "meanwhile"
            assert len(wasm._running) == 2  # both loops were running all along
            frames = await a.collect("spins")
            assert [r["content"] for r in results_of(frames)] == ["tool spin timed out after 3000ms"] * 2
