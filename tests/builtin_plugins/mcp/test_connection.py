"""A server's life as the plugin sees it: down at start and retried, lost and noticed, its tool list changing."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

from tests.builtin_plugins.mcp.mcp_helpers import call, chat, eventually, free_port, offered, report
from tests.fakes.mcp_server import running_mcp_server
from tests.harness import make_settings, running_gateway


async def test_a_server_down_at_start_is_reported_and_retried(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    settings = make_settings(data_dir=tmp_path, mcp=[{"name": "late", "url": url, "tools": ["echo"]}])
    async with running_gateway(settings) as gw:
        rep = report(gw, "late")
        assert rep["state"] == "down" and rep["loaded"] is False and rep["reason"]
        assert rep["summary"].startswith("late (streamable-http, down: ")
        assert offered(gw) == []
        async with gw.client() as c:
            assert (await c.chat(chat("the gateway is up")))[-1]["event"] == "done"
            assert (await call(c, "late__echo"))["content"] == "unknown tool: late__echo"
            with running_mcp_server(port=port):
                await eventually(lambda: report(gw, "late")["state"] == "up", "the retry connected", timeout=30)
                assert offered(gw) == ["late__echo"]
                assert "\nback\n" in (await call(c, "late__echo", {"text": "back"}))["content"]
            # the server went away: a call is an error result (the connection lost, or the tool already gone)
            gone = await call(c, "late__echo", {"text": "x"})
            assert gone["is_error"]
            assert gone["content"].startswith("MCP tool late.echo failed: ") or "unknown tool" in gone["content"]
            await eventually(lambda: report(gw, "late")["state"] != "up", "the loss was noticed")
            assert offered(gw) == []


async def test_a_tool_added_later_is_offered_only_once_granted(tmp_path):
    with running_mcp_server() as server:
        settings = make_settings(data_dir=tmp_path, mcp=[server.entry(tools=["grow", "shrink", "granted_later"])])
        async with running_gateway(settings) as gw:
            assert offered(gw) == ["t__grow", "t__shrink"]
            async with gw.client() as c:
                await call(c, "t__grow", {"name": "surprise"})
                await call(c, "t__grow", {"name": "granted_later"})
                await eventually(lambda: "t__granted_later" in offered(gw), "the listing refreshed")
                assert "surprise" in report(gw)["available"] and "t__surprise" not in offered(gw)
                assert "granted_later: hi" in (await call(c, "t__granted_later", {"text": "hi"}))["content"]
                assert (await call(c, "t__surprise", {"text": "hi"}))["content"] == "unknown tool: t__surprise"
                await call(c, "t__shrink", {"name": "granted_later"})
                await eventually(lambda: "t__granted_later" not in offered(gw), "the tool went away")


async def test_a_local_server_that_cannot_run_is_refused_not_retried(tmp_path):
    settings = make_settings(
        data_dir=tmp_path, env={"PATH": "/nonexistent"},
        mcp_stdio={"allow": True, "commands": ["no-such-command-here"]},
        mcp=[{"name": "fs", "command": "no-such-command-here", "tools": "*"}],
    )
    async with running_gateway(settings) as gw:
        rep = report(gw, "fs")
        assert rep["state"] == "refused" and rep["reason"] == "command not found: no-such-command-here"
        assert rep["summary"] == "fs (stdio, refused: command not found: no-such-command-here)"
        # the runtime check stands even if a config object reached the plugin without [mcp_stdio]
        plugin = gw.rt.pm.get_plugin("mcp")
        await plugin.gateway_shutdown(None)
        plugin.stdio = type(plugin.stdio)()
        plugin.servers = (replace(plugin.servers[0], executable=sys.executable),)

        class Host:
            def register_secret(self, value: Any) -> None: ...
            hooks = gw.rt.host.hooks

        await plugin.gateway_startup(Host())
        assert report(gw, "fs")["state"] == "refused"
        assert "[mcp_stdio] allow = true" in report(gw, "fs")["reason"]

