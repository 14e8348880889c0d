"""``exoclaw mcp list`` and what ``exoclaw serve`` / ``exoclaw plugins`` say about MCP servers."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from exoclaw_core.cli.main import main
from tests.core.cli.test_serve import clean_env, start_serve, stop
from tests.fakes.mcp_server import ROOT, running_mcp_server, stdio_command


@pytest.fixture(scope="module")
def server():
    with running_mcp_server() as s:
        yield s


def write_config(tmp_path: Path, server, *, stdio: bool = False) -> Path:
    text = f"""
[[mcp]]
name = "t"
url = "{server.url}"
tools = ["echo", "add", "gone"]

[[mcp]]
name = "down"
url = "http://127.0.0.1:9/mcp"
connect_timeout_ms = 1000
"""
    if stdio:
        args = json.dumps(stdio_command()[1:])
        text = f"""
[mcp_stdio]
allow = true
commands = [{json.dumps(sys.executable)}]
""" + text + f"""
[[mcp]]
name = "fs"
command = {json.dumps(sys.executable)}
args = {args}
cwd = {json.dumps(str(ROOT))}
tools = ["echo"]
"""
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("EXOCLAW_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    return tmp_path


def test_mcp_list_shows_state_and_tools(server, home, capsys):
    config = write_config(home, server)
    assert main(["mcp", "list", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    t, down = out.split("\ndown  ")
    assert t.startswith(f"t  streamable-http  {server.url}\n    state:        up (protocol ")
    assert "    granted:      echo, add, gone\n    offered:      t.echo, t.add\n" in t
    assert "    not granted:  env, fail, garble, grow, hang, huge, rpc_error, shrink\n" in t
    assert "    granted but not listed by the server: gone" in t
    assert down.startswith("streamable-http  http://127.0.0.1:9/mcp\n    state:        down: ")
    assert " s)\n" in down.split("state:")[1] and "(retrying in " in down
    assert "    granted:      none\n    offered:      none" in down

    assert main(["mcp", "list", "--config", str(config), "--json"]) == 0
    servers = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in servers] == ["t", "down"]
    assert servers[0]["tools"] == ["t.echo", "t.add"] and servers[1]["state"] == "down"

    assert main(["plugins", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "wasm plugins: none configured\nmcp servers:\n  t (streamable-http, up, 2 tools)\n" in out
    assert "      tools: t.echo, t.add\n  down (streamable-http, down: " in out


def test_mcp_list_without_servers(home, capsys):
    (home / "config.toml").write_text("")
    assert main(["mcp", "list", "--config", str(home / "config.toml")]) == 0
    assert capsys.readouterr().out == "no MCP servers configured (add [[mcp]] entries to the config)\n"
    (home / "config.toml").write_text('[hooks]\ndisable = ["mcp"]\n')
    assert main(["mcp", "list", "--config", str(home / "config.toml")]) == 1
    assert "the mcp plugin is not loaded" in capsys.readouterr().err
    assert main(["mcp"]) == 2  # no subcommand: the help


def test_serve_says_which_servers_run_and_that_local_ones_are_unsandboxed(server, tmp_path):
    config = write_config(tmp_path, server, stdio=True)
    served = start_serve(tmp_path, "--config", str(config), env=clean_env(tmp_path))
    try:
        lines = served.banner.splitlines()
        (summary,) = [line for line in lines if line.startswith("  mcp servers: ")]
        assert summary.startswith("  mcp servers: t (streamable-http, up, 2 tools), down (streamable-http, down: ")
        assert summary.endswith(", fs (stdio, up, 1 tool)")
        assert f"!! MCP server fs runs a local command UNSANDBOXED with the gateway's rights: {sys.executable}" in lines
        assert "  wasm plugins: none" in lines
    finally:
        code, _, err = stop(served)
    assert code == 0, err


def test_status_shows_the_mcp_servers():
    from exoclaw_core.cli.status_cmd import format_status

    text = format_status({"version": "1", "uptime_s": 3, "mcp_servers": [
        {"name": "gh", "transport": "streamable-http", "state": "up", "reason": "", "tools": ["gh.a"], "unsandboxed": False},
        {"name": "late", "transport": "sse", "state": "down", "reason": "All connection attempts failed", "tools": []},
        {"name": "fs", "transport": "stdio", "state": "up", "reason": "", "tools": ["fs.a", "fs.b"], "unsandboxed": True},
    ]})
    assert text.splitlines()[-3:] == [
        "mcp server gh (streamable-http): up, 1 tool",
        "mcp server late (sse): down: All connection attempts failed",
        "mcp server fs (stdio, UNSANDBOXED): up, 2 tools",
    ]
