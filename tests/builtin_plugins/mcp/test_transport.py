"""How servers are reached: secret headers, SSE, stdio with a clean environment, listings screened on the way in."""

from __future__ import annotations

import json
import logging
import os
import sys

from tests.builtin_plugins.mcp.mcp_helpers import call, offered, report
from tests.fakes.mcp_server import ROOT, running_mcp_server, stdio_command
from tests.harness import make_settings, running_gateway


async def test_malformed_tools_are_skipped_and_named_in_the_log(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="exoclaw.mcp")
    with running_mcp_server("--malformed") as server:
        settings = make_settings(data_dir=tmp_path, mcp=[server.entry(name="bad", tools="*")])
        async with running_gateway(settings) as gw:
            rep = report(gw, "bad")
            assert rep["state"] == "up"
            assert sorted(rep["skipped"]) == ["bad_props", "bad_schema", "bad_type"]
            assert "bad__echo" in offered(gw)
            assert not {"bad__bad_schema", "bad__bad_type", "bad__bad_props"} & set(offered(gw))
            async with gw.client() as c:  # the good tools work (the SDK never saw the bad ones)
                assert "\nok\n" in (await call(c, "bad__echo", {"text": "ok"}))["content"]
    skipped = [r.getMessage() for r in caplog.records if "event=mcp_tool_skipped" in r.getMessage()]
    assert len(skipped) == 3
    assert any("server=bad tool=bad_schema reason=\"its inputSchema is not an object\"" in s for s in skipped)


async def test_header_secrets_reach_the_server_and_nothing_else(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)  # at every level, the SDK's own lines included
    token, team = "tok-3f9a8b7c6d5e", "blue-team-77"
    with running_mcp_server("--token", token, "--require-header", f"X-Team={team}") as server:
        settings = make_settings(data_dir=tmp_path, env={"T_TOKEN": token, "T_TEAM": team}, mcp=[
            server.entry(tools=["echo"], bearer="T_TOKEN", headers={"X-Team": "T_TEAM"}),
            server.entry(name="nokey", tools=["echo"], bearer="T_MISSING"),
            server.entry(name="anon", tools=["echo"]),  # no credentials: the server answers 401
        ])
        async with running_gateway(settings) as gw:
            assert report(gw)["state"] == "up"  # the server checked both headers
            nokey, anon = report(gw, "nokey"), report(gw, "anon")
            assert nokey["state"] == "refused" and nokey["reason"] == "environment variable T_MISSING is not set"
            assert anon["state"] == "down"
            async with gw.client() as c:
                assert "\nhi\n" in (await call(c, "t__echo", {"text": "hi"}))["content"]
                # a server echoing what it was sent cannot put the token in the model's context
                echoed = await call(c, "t__echo", {"text": f"your token is {token}"})
                assert "\nyour token is [REDACTED]\n" in echoed["content"]
                status = (await c.request("status"))["result"]
            shown = json.dumps([gw.rt.plugin_report(), status])
    for secret in (token, team):
        assert secret not in shown
        assert secret not in caplog.text  # caplog sees records unredacted: nothing even tried to log them


async def test_an_sse_server(tmp_path):
    with running_mcp_server(transport="sse") as server:
        settings = make_settings(data_dir=tmp_path, mcp=[server.entry(name="old", tools=["echo"])])
        async with running_gateway(settings) as gw:
            assert report(gw, "old")["transport"] == "sse" and report(gw, "old")["state"] == "up"
            async with gw.client() as c:
                assert "\nover sse\n" in (await call(c, "old__echo", {"text": "over sse"}))["content"]


async def test_a_local_server_gets_only_the_granted_variables(tmp_path):
    settings = make_settings(
        data_dir=tmp_path, env={"PATH": os.environ.get("PATH", ""), "HOME": "/home/u", "HOST_SECRET": "s3cr3t-value"},
        mcp_stdio={"allow": True, "commands": [sys.executable]},
        mcp=[{"name": "fs", "command": sys.executable, "args": stdio_command()[1:], "cwd": str(ROOT),
              "env": {"GRANTED": "HOST_SECRET"}, "tools": ["env", "echo"]}],
    )
    async with running_gateway(settings) as gw:
        rep = report(gw, "fs")
        assert rep["state"] == "up" and rep["transport"] == "stdio" and rep["unsandboxed"] is True
        assert rep["warning"].startswith("MCP server fs runs a local command UNSANDBOXED")
        async with gw.client() as c:
            async def env(name: str) -> str:
                content = (await call(c, "fs__env", {"name": name}))["content"]
                return content.splitlines()[1]

            assert await env("GRANTED") == "[REDACTED]"  # it reached the child; the model never sees a secret
            for name in ("HOME", "PATH", "USER", "HOST_SECRET", "VIRTUAL_ENV"):
                assert await env(name) == "<unset>", name
            assert "\nlocal\n" in (await call(c, "fs__echo", {"text": "local"}))["content"]
    assert (tmp_path / "mcp-fs.stderr.log").exists()
