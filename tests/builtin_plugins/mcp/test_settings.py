"""``[[mcp]]`` and ``[mcp_stdio]``: what is accepted, and every refusal located and free of secrets."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from builtin_plugins.mcp.settings import ServerConfig, StdioPolicy, redact_url, url_problems
from exoclaw_hooks import ConfigError
from tests.harness import parse_config


def built(text: str, env: dict | None = None) -> tuple[tuple[ServerConfig, ...], StdioPolicy]:
    _, tables = parse_config(textwrap.dedent(text), env=env or {"HOME": "/home/u", "PATH": "/usr/bin:/bin"},
                             config_dir="/etc/exo")
    return tables["mcp"], tables["mcp_stdio"]


def problems(text: str, env: dict | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        built(text, env)
    return info.value.problems


def test_a_remote_server_with_secrets_from_the_environment():
    (gh,), stdio = built("""
        [[mcp]]
        name = "gh"
        url = "https://api.example.com/mcp/"
        tools = ["search_issues", "get_issue", "search_issues"]
        bearer = "GH_TOKEN"
        headers = { X-Team = "GH_TEAM" }
        timeout_ms = 2000
    """, env={"GH_TOKEN": "ghp_abcdefgh", "GH_TEAM": "core"})
    assert gh.name == "gh" and gh.kind == "streamable-http" and gh.timeout_ms == 2000
    assert gh.tools == ("search_issues", "get_issue")  # duplicates dropped, order kept
    assert gh.grants("get_issue") and not gh.grants("create_issue")
    assert gh.http_headers() == {"X-Team": "core", "Authorization": "Bearer ghp_abcdefgh"}
    assert gh.missing_secrets() == []
    assert "ghp_abcdefgh" not in repr(gh)  # values are held, never shown
    assert stdio == StdioPolicy()  # no [mcp_stdio]: local servers are off


def test_defaults_grant_nothing_and_star_grants_everything():
    (a, b), _ = built("""
        [[mcp]]
        name = "a"
        url = "http://127.0.0.1:9/mcp"

        [[mcp]]
        name = "b"
        url = "http://localhost:9/sse"
        transport = "sse"
        tools = "*"
    """)
    assert a.tools == () and not a.grants("anything")
    assert b.tools == "*" and b.grants("anything") and b.kind == "sse"
    assert (a.timeout_ms, a.connect_timeout_ms, a.max_output_bytes, a.refresh_s) == (30_000, 5_000, 64 * 1024, 300)


def test_missing_secrets_are_named_not_a_config_error():
    (gh,), _ = built("""
        [[mcp]]
        name = "gh"
        url = "https://api.example.com/mcp"
        headers = { Authorization = "GH_AUTH" }
    """, env={})
    assert gh.missing_secrets() == ["GH_AUTH"]  # the server is refused at start (see test_plugin.py)


@pytest.mark.parametrize("url, secret", [
    ("https://user:hunter2pass@api.example.com/mcp", "hunter2pass"),
    ("https://hunter2pass@api.example.com/mcp", "hunter2pass"),
    ("https://api.example.com/mcp?api_key=hunter2pass", "hunter2pass"),
    ("https://api.example.com/mcp?x=1&Token=hunter2pass", "hunter2pass"),
])
def test_a_url_with_credentials_is_refused_without_repeating_them(url, secret):
    (problem,) = problems(f"""
        [[mcp]]
        name = "gh"
        url = "{url}"
    """)
    assert problem.startswith('config.toml: [[mcp]] #1 (name "gh") url: must not carry credentials')
    assert "headers or bearer" in problem
    assert secret not in problem


def test_url_checks_and_redaction():
    assert url_problems("https://api.example.com/mcp?page=2") == []
    assert url_problems("ftp://host/x") == ["url: must be an http:// or https:// URL (got ftp://host/x)"]
    assert url_problems("https://host:99999/") == ["url: must be an http:// or https:// URL"]
    assert redact_url("ftp://u:p@host:21/x?token=t") == "ftp://***@host:21/x?***"


def test_cross_key_problems_are_located():
    got = problems("""
        [[mcp]]
        name = "gh"
        url = "http://api.example.com/mcp"
        bearer = "GH_TOKEN"

        [[mcp]]
        name = "gh"
        url = "https://example.com/mcp"
        args = ["-x"]

        [[mcp]]
        name = "both"
        url = "https://example.com/mcp"
        command = "/bin/true"

        [[mcp]]
        name = "neither"

        [[mcp]]
        name = "auth"
        url = "https://example.com/mcp"
        bearer = "A"
        headers = { authorization = "B" }
    """)
    assert got == [
        'config.toml: [[mcp]] #1 (name "gh") url: secret headers are only sent over https:// '
        '(or to a loopback http:// server)',
        'config.toml: [[mcp]] #2 (name "gh") name: must be unique, [[mcp]] #1 has the same name',
        'config.toml: [[mcp]] #2 (name "gh") args: only for a local server (command)',
        'config.toml: [[mcp]] #3 (name "both") url: give either url (a remote server) or command (a local stdio server)',
        'config.toml: [[mcp]] #4 (name "neither") url: give either url (a remote server) or command '
        '(a local stdio server)',
        'config.toml: [[mcp]] #5 (name "auth") bearer: headers already sets Authorization',
    ]


def test_schema_problems_are_reported_together():
    got = problems("""
        [[mcp]]
        name = "bad.name"
        url = "https://example.com/mcp"
        tools = "some"
        headers = { "Mcp-Session-Id" = "X", Good = "not a var" }
        timeout_ms = 0
        transport = "websocket"
        colour = "blue"
    """)
    assert 'config.toml: [[mcp]] #1 (name "bad.name") colour: unknown key' in got
    assert any("name: must be 1 to 32 letters" in p for p in got)
    assert any('tools: must be a list of tool names or "*" (got "some")' in p for p in got)
    assert any("headers.Mcp-Session-Id: is set by the MCP transport itself" in p for p in got)
    assert any("headers.Good: must be the name of an environment variable" in p for p in got)
    assert any("timeout_ms: must be an integer from 1 to 3600000 (got 0)" in p for p in got)
    assert any('transport: must be one of streamable-http, sse (got "websocket")' in p for p in got)
    assert len(got) == 7


def test_local_servers_are_off_unless_allowed_and_listed():
    entry = f"""
        [[mcp]]
        name = "fs"
        command = "{sys.executable}"
        args = ["-m", "server"]
        env = {{ GRANTED = "HOST_VAR" }}
        cwd = "servers"
    """
    assert problems(entry) == [
        'config.toml: [[mcp]] #1 (name "fs") command: local MCP servers are off; '
        "set [mcp_stdio] allow = true to run them"]
    assert problems("[mcp_stdio]\nallow = true\n" + textwrap.dedent(entry)) == [
        f'config.toml: [[mcp]] #1 (name "fs") command: "{sys.executable}" is not listed in [mcp_stdio] commands']
    assert problems(f'[mcp_stdio]\ncommands = ["{sys.executable}"]\n' + textwrap.dedent(entry))[0].endswith(
        "local MCP servers are off; set [mcp_stdio] allow = true to run them")
    (fs,), stdio = built(f'[mcp_stdio]\nallow = true\ncommands = ["{sys.executable}"]\n' + textwrap.dedent(entry),
                         env={"HOST_VAR": "v", "HOME": "/home/u"})
    assert stdio.permits(sys.executable) and not stdio.permits("/bin/sh")
    assert fs.kind == "stdio" and fs.executable == sys.executable and fs.args == ("-m", "server")
    assert fs.child_env() == {"GRANTED": "v"} and fs.cwd == "/etc/exo/servers"
    assert fs.stderr_path.endswith("mcp-fs.stderr.log")
    assert fs.connect_timeout_ms == 30_000  # a local server may first be fetched (npx, uvx)
    assert fs.where() == sys.executable  # not the arguments: they may carry what should be a granted variable


def test_remote_only_keys_on_a_local_server_and_a_command_not_on_path():
    missing = """
        [mcp_stdio]
        allow = true
        commands = ["no-such-command-here"]

        [[mcp]]
        name = "fs"
        command = "no-such-command-here"
    """
    assert problems(missing + '        headers = { X = "Y" }\n        transport = "sse"\n') == [
        'config.toml: [[mcp]] #1 (name "fs") transport: only for a remote server (url)',
        'config.toml: [[mcp]] #1 (name "fs") headers: only for a remote server (url)',
    ]
    (fs,), _ = built(missing)
    assert fs.executable is None  # refused at start: "command not found" (test_plugin.py)


def test_an_agent_naming_a_tool_its_server_does_not_grant_is_a_config_error():
    got = problems("""
        [agent]
        provider = "echo"
        tools = ["echo", "gh.search_issues", "gh.create_issue", "gh.*", "other.tool"]

        [agents.work]
        provider = "echo"
        tools = ["gh.delete_repo"]

        [[mcp]]
        name = "gh"
        url = "https://example.com/mcp"
        tools = ["search_issues"]
    """)
    assert got == [
        'config.toml: [agent] tools: "gh.create_issue" is not granted by [[mcp]] gh (its tools: search_issues)',
        'config.toml: [agents.work] tools: "gh.delete_repo" is not granted by [[mcp]] gh (its tools: search_issues)',
    ]


def test_the_commented_example_in_examples_config_is_valid():
    example = (Path(__file__).resolve().parents[3] / "examples" / "config.toml").read_text()
    start = example.index("# [[mcp]]\n# name = \"gh\"")
    block = example[start:example.index("\n\n", start)]
    text = "\n".join(line[2:] for line in block.splitlines())
    (gh,), _stdio = built(text, env={})
    assert gh.name == "gh" and gh.tools == ("search_issues",) and gh.url.startswith("https://")