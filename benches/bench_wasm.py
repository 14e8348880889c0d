"""What the WASM sandbox costs: per call, per dispatch, per plugin load, per webhook.

Real modules built from ``wasm_plugins/`` (once, by the build script), the
real Extism runtime, the ``wasm`` builtin plugin's own code paths.

* ``test_fresh_instance_echo`` — one ``echo`` tool call as the gateway makes
  it: a fresh instance from the compiled module, ``handle_tool_call``, the
  output-size check, freeing the instance. Target: median under 0.3 ms.
* ``test_dispatch_round_trip`` — ``dispatch_tool`` through the hook: the
  decision, the hop to the plugin's worker thread and back to the event
  loop, the JSON in and out, the ``ToolResult``.
* ``test_load_plugin`` — start-up cost per plugin: read, compile once,
  trial instance, ``describe`` (``compile_ms`` of the log line is the
  compile step alone, shown in ``extra_info``).
* ``test_telegram_parse_and_format`` — one webhook's WASM work for the
  Telegram channel: the constant-time secret check, ``parse_incoming`` of a
  realistic Update and ``format_outgoing`` of the reply.

Run: ``PYTHONPATH=. python -m pytest benches/bench_wasm.py --benchmark-columns=min,median,mean,max``
"""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from builtin_plugins.wasm import bridge, calls, channels
from builtin_plugins.wasm.plugin import WasmPlugin
from exoclaw_hooks import AgentConfig, OutgoingReply, Route, ToolCall, ToolContext, ToolResult, WebhookRequest
from builtin_plugins.wasm.settings import WasmPluginConfig
from exoclaw_hooks.testing import FakeHost, tables_of
from tests.wasm_plugins.conftest import wasm_build  # noqa: F401 - session fixture: build once

PLUGIN_CAPS = {"kv": ("store:kv",), "fetch": ("http:127.0.0.1",), "telegram": ("http:127.0.0.1",)}


def test_fresh_instance_echo(benchmark, wasm_build):
    lp = bridge.load_plugin(WasmPluginConfig(name="echo", path=str(wasm_build["echo"])))
    payload = json.dumps({"name": "echo", "input": {"text": "hello, sandbox"}}).encode()
    out = benchmark(calls.call_export, lp, "handle_tool_call", payload)
    assert json.loads(out) == {"content": "hello, sandbox", "is_error": False}


def test_dispatch_round_trip(benchmark, wasm_build):
    plugin = WasmPlugin()
    tables_of(plugin)["plugins"].apply((WasmPluginConfig(name="echo", path=str(wasm_build["echo"])),))
    host = FakeHost()
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(plugin.gateway_startup(host))
        context = ToolContext(AgentConfig(id="a", provider="echo", model="echo"), Route("a", "a:t:u:main"))
        call = ToolCall("toolu_1", "echo", {"text": "hello, sandbox"})

        async def one() -> ToolResult:
            return await plugin.dispatch_tool(call, context)

        result = benchmark(lambda: loop.run_until_complete(one()))
        assert result == ToolResult("toolu_1", "hello, sandbox", False)
    finally:
        loop.run_until_complete(plugin.gateway_shutdown(host))
        loop.close()


@pytest.mark.parametrize("name", ["echo", "kv", "fetch", "mock", "telegram"])
def test_load_plugin(benchmark, wasm_build, name):
    config = WasmPluginConfig(name=name, path=str(wasm_build[name]), capabilities=PLUGIN_CAPS.get(name, ()))
    lp = benchmark.pedantic(bridge.load_plugin, args=(config,), rounds=15, iterations=1, warmup_rounds=1)
    benchmark.extra_info["compile_ms"] = round(lp.compile_ms, 3)
    benchmark.extra_info["bytes"] = os.path.getsize(config.path)
    assert lp.kind in ("tool", "channel")


def test_telegram_parse_and_format(benchmark, wasm_build, monkeypatch):
    monkeypatch.setenv("BENCH_TG_SECRET", "s3cret")
    monkeypatch.setenv("BENCH_TG_TOKEN", "123:token")
    lp = bridge.load_plugin(WasmPluginConfig(
        name="telegram", path=str(wasm_build["telegram"]), capabilities=("http:127.0.0.1",),
        secrets={"webhook_secret": "BENCH_TG_SECRET", "bot_token": "BENCH_TG_TOKEN"},
        config={"api_base": "http://127.0.0.1:8081"},
    ))
    body = json.dumps({
        "update_id": 918273645,
        "message": {
            "message_id": 77, "date": 1700000000,
            "from": {"id": 123456789, "is_bot": False, "first_name": "Ann", "language_code": "en"},
            "chat": {"id": -1001234567890, "type": "supergroup", "title": "Group"},
            "text": "What's on my calendar tomorrow? " * 4,
        },
    }).encode()
    request = WebhookRequest(channel="telegram", body=body, headers={
        "Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": "s3cret",
    })

    def webhook():
        msg = channels.parse_incoming(lp, request)
        return channels.format_outgoing(lp, OutgoingReply("telegram", msg.reply_to, "Nothing yet: enjoy your day."))

    req = benchmark(webhook)
    assert req.body == {"chat_id": -1001234567890, "text": "Nothing yet: enjoy your day."}
