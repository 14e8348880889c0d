"""Tool results are capped in tokens before they enter the next LLM call (every tool, any plugin)."""

from __future__ import annotations

import textwrap

import pytest

from exoclaw_hooks import estimate_tokens
from exoclaw_core.agent.tools import cap_result
from tests.harness import parse_settings
from builtin_plugins.wasm.settings import WasmPluginConfig
from exoclaw_hooks import AgentConfig, ConfigError, ToolCall, ToolResult, hookimpl
from exoclaw_hooks.testing import Script, ScriptedProvider
from tests.core.agent.test_turns import Scripted
from tests.harness import make_settings, running_gateway
from tests.wasm_plugins.conftest import wasm_build  # noqa: F401 - session fixture


def test_a_result_that_fits_is_unchanged():
    result = ToolResult("t1", "x" * 400)
    assert cap_result(result, 100) is result


@pytest.mark.parametrize("size, limit", [(401, 100), (1_000_000, 2000), (10_000, 64)])
def test_a_longer_result_keeps_its_head_and_says_where_it_was_cut(size, limit):
    content = "".join(chr(0x61 + i % 26) for i in range(size))
    capped = cap_result(ToolResult("t1", content, True), limit)
    assert capped.tool_use_id == "t1" and capped.is_error is True
    assert estimate_tokens(capped.content) <= limit
    head, mark = capped.content.split("\n[… cut by the gateway: ", 1)
    assert content.startswith(head) and head
    assert f"about {estimate_tokens(content)} tokens ({size} characters)" in mark
    assert mark.endswith(f"(max_tool_result_tokens = {limit})]")


def test_the_key_is_validated():
    def parse(text: str):
        return parse_settings(textwrap.dedent(text), env={"HOME": "/home/u"}, config_dir="/etc/exo")

    assert parse("[agent]\nmax_tool_result_tokens = 500\n").agents["default"].max_tool_result_tokens == 500
    assert parse("").agents["default"].max_tool_result_tokens == 2000
    with pytest.raises(ConfigError) as info:
        parse("[agent]\nmax_tool_result_tokens = 10\n")
    assert "max_tool_result_tokens" in str(info.value)


class Flood:
    """A Python plugin's tool that answers a megabyte."""

    @hookimpl
    def dispatch_tool(self, call, context):
        if call.name != "flood":
            return None
        return ToolResult(call.id, "f" * 1_000_000)


async def test_every_tools_result_is_capped_before_the_next_llm_call(wasm_build, tmp_path):  # noqa: F811
    provider = ScriptedProvider()
    provider.enqueue(
        Script(tool_calls=[ToolCall("t1", "big", {"n": 100_000}), ToolCall("t2", "flood", {}),
                           ToolCall("t3", "counter", {})]),
        Script(text=["fine"]),
    )
    agent = AgentConfig(id="default", provider="scripted", model="m1", max_tool_result_tokens=100)
    settings = make_settings(data_dir=tmp_path, agents=[agent], plugins=(
        WasmPluginConfig(name="testtools", path=str(wasm_build["testtools"])),))
    async with running_gateway(settings, plugins=[("scripted", Scripted(provider)), ("flood", Flood())]) as gw:
        async with gw.client() as c:
            frames = await c.chat({"channel": "t", "account": "a", "content": "go"})
            history = (await c.request("chat.history", {"session": "default:t:a:main"}))["result"]
    streamed = [f["data"] for f in frames if f.get("event") == "tool_result"]
    sent = provider.history[1].messages[-1].tool_results
    stored = history[2]["tool_results"]
    # what the client saw, what the model was sent next, what was stored: the same capped results
    for results in (streamed, [{"content": r.content} for r in sent], stored):
        big, flood, counter = (r["content"] for r in results)
        assert big.startswith("x" * 100) and "(100000 characters)" in big and estimate_tokens(big) <= 100
        assert flood.startswith("f" * 100) and "(1000000 characters)" in flood and estimate_tokens(flood) <= 100
        assert counter == "1"  # a short result is untouched
