"""Validation of each section: every problem has its file, table, key and value."""

from __future__ import annotations

import textwrap

import pytest

from tests.harness import parse_config
from exoclaw_hooks import AgentConfig, ConfigError, ProviderSettings, hookimpl
from builtin_plugins.metering.settings import BudgetLimits, Price
from builtin_plugins.router import Binding
from builtin_plugins.wasm.settings import WasmPluginConfig
from exoclaw_core.config import Settings


def parse(text: str, env: dict | None = None, **kw) -> Settings:
    return parse_built(text, env, **kw)[0]


def parse_built(text: str, env: dict | None = None, **kw) -> tuple[Settings, dict]:
    """The settings and each plugin table as its owner received it."""
    return parse_config(textwrap.dedent(text), env=env or {"HOME": "/home/u"}, config_dir="/etc/exo", **kw)


def problems(text: str, env: dict | None = None, **kw) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(text, env, **kw)
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


# --------------------------------------------------------------------------
# a valid file


FULL = """
    [gateway]
    bind = "0.0.0.0"
    port = 8080
    token = "secret-0123456789abcdef"
    max_message_bytes = 2048
    allowed_origins = ["https://app.example"]
    ws_compression = true
    header_timeout_s = 5
    body_timeout_s = 12.5
    idle_timeout_s = 30
    max_connections = 900

    [agent]
    id = "personal"
    provider = "anthropic"
    model = "claude-haiku-4-5"
    max_tokens = 1000
    base_url = "http://127.0.0.1:9999"
    api_key = "sk-file"
    system_prompt = "Be brief."
    soul_path = "soul.md"
    tools = ["echo"]
    max_tool_iterations = 3
    timeout_s = 30

    [agent.options]
    chunk_delay_s = 0

    [agent.fallback]
    provider = "openai"
    model = "gpt-4o"

    [agents.work]
    provider = "openai"
    model = "gpt-4o-mini"
    tools = []

    [budgets]
    session = 100
    daily = 0
    [budgets.agents.work]
    monthly = 7

    [pricing."openai:gpt-4o"]
    input = 2
    output = 10.5
    cache_read = 1.25

    [memory]
    episodic_window = 0
    semantic_enabled = false
    context_tokens = 3000

    [hooks]
    disable = ["memory-semantic"]
    load = ["acme.audit"]

    [[plugins]]
    name = "telegram"
    path = "plugins/telegram.wasm"
    capabilities = ["http:api.telegram.org", "store:tg.state-1", "http:*", "http:10.0.0.1"]
    secrets = { bot_token = "TELEGRAM_BOT_TOKEN" }
    config = { api_base = "https://api.telegram.org" }
    timeout_ms = 500
    memory_max_pages = 65536
    max_output_bytes = 10
    sha256 = "ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789"

    [[bindings]]
    channel = "telegram"
    peer_id = "g1"
    agent_id = "work"

    [[bindings]]
    channel = "telegram"
    agent_id = "personal"
"""


def test_valid_file_loads_into_the_dataclasses():
    s, built = parse_built(FULL, {"HOME": "/home/u", "OPENAI_API_KEY": "sk-openai"})
    assert s.gateway.bind == "0.0.0.0" and s.gateway.port == 8080 and s.gateway.token == "secret-0123456789abcdef"
    assert s.gateway.max_message_bytes == 2048 and s.gateway.allowed_origins == ("https://app.example",)
    assert s.gateway.ws_compression is True and s.gateway.max_connections == 900
    assert (s.gateway.header_timeout_s, s.gateway.body_timeout_s, s.gateway.idle_timeout_s) == (5.0, 12.5, 30.0)
    assert s.default_agent == "personal" and list(s.agents) == ["personal", "work"]
    personal = s.agents["personal"]
    assert personal == AgentConfig(
        id="personal", provider="anthropic", model="claude-haiku-4-5", max_tokens=1000,
        base_url="http://127.0.0.1:9999", api_key="sk-file", system_prompt="Be brief.",
        soul_path="/etc/exo/soul.md", tools=("echo",), max_tool_iterations=3, timeout_s=30.0,
        fallback=ProviderSettings(provider="openai", model="gpt-4o", max_tokens=1000,
                                  api_key="sk-openai", timeout_s=30.0),
        options={"chunk_delay_s": 0},
    )
    assert isinstance(personal.timeout_s, float)
    work = s.agents["work"]
    assert (work.id, work.provider, work.model, work.tools, work.api_key) == (
        "work", "openai", "gpt-4o-mini", (), "sk-openai")
    assert built["budgets"].session == 100 and built["budgets"].daily == 0 and built["budgets"].monthly is None
    assert built["budgets"].agents == {"work": BudgetLimits(monthly=7)}
    assert built["pricing"] == {"openai:gpt-4o": Price(input=2, output=10.5, cache_read=1.25)}
    m = built["memory"]
    assert (m.episodic_window, m.semantic_enabled, m.context_tokens) == (0, False, 3000)
    assert s.hooks.disable == ("memory-semantic",) and s.hooks.load == ("acme.audit",)
    assert built["plugins"] == (WasmPluginConfig(
        name="telegram", path="/etc/exo/plugins/telegram.wasm",
        capabilities=("http:api.telegram.org", "store:tg.state-1", "http:*", "http:10.0.0.1"),
        secrets={"bot_token": "TELEGRAM_BOT_TOKEN"}, config={"api_base": "https://api.telegram.org"},
        timeout_ms=500, memory_max_pages=65536, max_output_bytes=10,
        sha256="abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789",
    ),)
    assert built["bindings"] == (
        Binding(channel="telegram", agent_id="work", peer_id="g1"),
        Binding(channel="telegram", agent_id="personal"),
    )
    assert s.config_dir == "/etc/exo"


def test_dataclass_defaults_apply_to_absent_keys():
    s, built = parse_built('[[plugins]]\nname = "echo"\npath = "/x/echo.wasm"\n')
    p = built["plugins"][0]
    assert (p.timeout_ms, p.memory_max_pages, p.max_output_bytes, p.capabilities, p.sha256) == (
        1000, 256, 1024 * 1024, (), None)
    agent = s.agents["default"]
    assert (agent.max_tokens, agent.tools, agent.soul_path, agent.fallback, agent.system_prompt) == (
        4096, None, None, None, "")


# --------------------------------------------------------------------------
# the message format


def test_invalid_provider_exact_text():
    assert problems('[agent]\nprovider = "antropic"\n') == [
        'config.toml: [agent] provider: must be one of anthropic, openai, echo (got "antropic")'
    ]


class Ollama:
    """A third party's provider: no default model, no key."""

    @hookimpl
    def register_providers(self, register, host):
        register("ollama", lambda settings: None)


def test_providers_added_by_plugins_are_known():
    ollama = [("ollama", Ollama())]
    s = parse('[agent]\nprovider = "ollama"\nmodel = "llama3"\n', plugins=ollama)
    assert s.agents["default"].provider == "ollama"
    assert problems('[agent]\nprovider = "x"\n', plugins=ollama) == [
        'config.toml: [agent] provider: must be one of anthropic, openai, echo, ollama (got "x")'
    ]
    assert problems('[agent]\nprovider = "ollama"\n', plugins=ollama) == [
        'config.toml: [agent] model: is required for provider "ollama", which has no default model'
    ]


def test_file_label_is_the_path_label():
    assert problems("[gateway]\nport = -1\n", path_label="exo.toml") == [
        "exo.toml: [gateway] port: must be an integer from 0 to 65535 (got -1)"
    ]


def test_unknown_keys_with_hints():
    assert problems('[gateway]\nprot = 1\nzzz = 2\n[gatway]\n[memory]\nwindow = 1\n') == [
        'config.toml: [gateway] prot: unknown key (did you mean "port"?)',
        "config.toml: [gateway] zzz: unknown key",
        "config.toml: [gatway]: unknown table (did you mean [gateway]?)",
        "config.toml: [memory] window: unknown key",
    ]
    assert problems("port = 1\n[[plugin]]\nname = 'x'\n") == [
        "config.toml: port: unknown key",
        "config.toml: [[plugin]]: unknown table (did you mean [plugins]?)",
    ]


@pytest.mark.parametrize(
    "text, expected",
    [
        ('[gateway]\nport = "80"', '[gateway] port: must be an integer from 0 to 65535 (got "80")'),
        ("[gateway]\nport = 65536", "[gateway] port: must be an integer from 0 to 65535 (got 65536)"),
        ("[gateway]\nport = true", "[gateway] port: must be an integer from 0 to 65535 (got true)"),
        ("[gateway]\nport = 80.0", "[gateway] port: must be an integer from 0 to 65535 (got 80.0)"),
        ('[gateway]\nbind = "not a host"', '[gateway] bind: must be an IP address or a hostname (got "not a host")'),
        ('[gateway]\nbind = "999.1.1.1"', '[gateway] bind: must be an IP address or a hostname (got "999.1.1.1")'),
        ("[gateway]\nmax_message_bytes = 0", "[gateway] max_message_bytes: must be a positive integer (got 0)"),
        ('[gateway]\nallowed_origins = "x"', '[gateway] allowed_origins: must be a list of strings (got "x")'),
        ("[gateway]\nallowed_origins = [1]", "[gateway] allowed_origins #1: must be a string (got 1)"),
        ("[gateway]\ntoken = 5", "[gateway] token: must be a string"),
        ('[gateway]\nws_compression = "on"', '[gateway] ws_compression: must be true or false (got "on")'),
        ("[gateway]\nheader_timeout_s = 0", "[gateway] header_timeout_s: must be a positive number (got 0)"),
        ("[gateway]\nbody_timeout_s = -1", "[gateway] body_timeout_s: must be a positive number (got -1)"),
        ('[gateway]\nidle_timeout_s = "1m"', '[gateway] idle_timeout_s: must be a positive number (got "1m")'),
        ("[gateway]\nmax_connections = 0", "[gateway] max_connections: must be a positive integer (got 0)"),
        ("[agent]\nmax_tokens = 0", "[agent] max_tokens: must be a positive integer (got 0)"),
        ("[agent]\nmax_tool_iterations = -3", "[agent] max_tool_iterations: must be a positive integer (got -3)"),
        ("[agent]\ntimeout_s = 0", "[agent] timeout_s: must be a positive number (got 0)"),
        ('[agent]\ntools = ["a", 2]', "[agent] tools #2: must be a string (got 2)"),
        ('[agent]\nid = ""', '[agent] id: must not be empty (got "")'),
        ('[agent]\nbase_url = "ftp://x"', '[agent] base_url: must be an http:// or https:// URL (got "ftp://x")'),
        ("[agent]\napi_key = 12", "[agent] api_key: must be a string"),
        ("agent = 3", "[agent]: must be a table (got 3)"),
        ('[memory]\nsemantic_enabled = "yes"', '[memory] semantic_enabled: must be true or false (got "yes")'),
        ("[memory]\nepisodic_window = -1", "[memory] episodic_window: must be a non-negative integer (got -1)"),
        ("[memory]\ncontext_tokens = 0", "[memory] context_tokens: must be a positive integer (got 0)"),
        ('[hooks]\ndisable = "x"', '[hooks] disable: must be a list of strings (got "x")'),
        ("[hooks]\nload = [1]", "[hooks] load #1: must be a string (got 1)"),
    ],
)
def test_value_errors(text, expected):
    assert problems(text) == ["config.toml: " + expected]


def test_fallback_needs_provider_and_model():
    assert problems("[agent.fallback]\nmax_tokens = 10\n") == [
        "config.toml: [agent.fallback] provider: is required",
        "config.toml: [agent.fallback] model: is required",
    ]
    assert problems('[agents.w.fallback]\nprovider = "nope"\nmodel = "m"\nx = 1\n') == [
        'config.toml: [agents.w.fallback] provider: must be one of anthropic, openai, echo (got "nope")',
        "config.toml: [agents.w.fallback] x: unknown key",
    ]


def test_named_agents():
    assert problems('[agents.work]\nid = "work"\nmodel = 4\n') == [
        "config.toml: [agents.work] id: not allowed here, the table name [agents.NAME] is the agent's id"
        ' (got "work")',
        "config.toml: [agents.work] model: must be a string (got 4)",
    ]
    assert problems('[agent]\nid = "me"\n[agents.me]\nmodel = "x"\n') == [
        'config.toml: [agents.me]: has the same id as the default agent ([agent] id is "me"); rename one of them'
    ]
    assert problems("[agents.default]\n") == [
        'config.toml: [agents.default]: has the same id as the default agent ([agent] id is "default");'
        " rename one of them"
    ]


def test_negative_budgets():
    assert problems("[budgets]\nsession = -1\ndaily = 1.5\n[budgets.agents.default]\nmonthly = -5\n") == [
        "config.toml: [budgets] session: must be a non-negative integer (got -1)",
        "config.toml: [budgets] daily: must be a non-negative integer (got 1.5)",
        "config.toml: [budgets.agents.default] monthly: must be a non-negative integer (got -5)",
    ]


def test_dollar_budgets_and_warn_at_are_checked_where_they_are_written():
    assert problems('[budgets]\ndaily_usd = -1\nmonthly_usd = "5"\nwarn_at = 1.5\n[budgets.person]\nsession_usd = true\n'
                    '[budgets.agents.default]\nwarn_at = 0.5\n') == [
        "config.toml: [budgets] daily_usd: must be a non-negative number (got -1)",
        'config.toml: [budgets] monthly_usd: must be a non-negative number (got "5")',
        "config.toml: [budgets] warn_at: must be a number greater than 0 and at most 1 (got 1.5)",
        "config.toml: [budgets.person] session_usd: must be a non-negative number (got true)",
        "config.toml: [budgets.agents.default] warn_at: unknown key",
    ]
    assert problems("[budgets]\nwarn_at = 0\n") == [
        "config.toml: [budgets] warn_at: must be a number greater than 0 and at most 1 (got 0)"]


def test_budgets_for_unknown_agent():
    assert problems("[agents.work]\n[budgets.agents.wrok]\ndaily = 1\n") == [
        'config.toml: [budgets.agents.wrok]: unknown agent, must be one of default, work (got "wrok")'
    ]


def test_pricing():
    assert problems('[pricing.gpt]\ninput = 1\noutput = 1\n[pricing."openai:x"]\ninput = -1\noutput = "a"\n'
                    '[pricing."a:b"]\ninput = 1\n') == [
        'config.toml: [pricing.gpt]: table name must look like "provider:model", e.g. "openai:gpt-4o"',
        "config.toml: [pricing.\"openai:x\"] input: must be a non-negative number (got -1)",
        'config.toml: [pricing."openai:x"] output: must be a non-negative number (got "a")',
        'config.toml: [pricing."a:b"] output: is required',
    ]


# --------------------------------------------------------------------------
# [[plugins]]


def test_bad_capability_strings():
    text = """
        [[plugins]]
        name = "x"
        path = "x.wasm"
        capabilities = ["http:api.telegram.org", "ftp:host", "http:", "store:", "store:a b", "http:bad host", "net", 4]
    """
    msg = "must be http:HOST, http:* or store:NAME (NAME: letters, digits, _ . -)"
    label = 'config.toml: [[plugins]] #1 (name "x") capabilities'
    assert problems(text) == [
        f'{label} #2: {msg} (got "ftp:host")',
        f'{label} #3: {msg} (got "http:")',
        f'{label} #4: {msg} (got "store:")',
        f'{label} #5: {msg} (got "store:a b")',
        f'{label} #6: {msg} (got "http:bad host")',
        f'{label} #7: {msg} (got "net")',
        f"{label} #8: must be a string (got 4)",
    ]


def test_plugin_entries():
    text = """
        [[plugins]]
        name = "echo"
        path = "echo.wasm"

        [[plugins]]
        name = "telegram"
        path = "t.wasm"
        timeout_ms = 0
        memory_max_pages = 0
        max_output_bytes = -1
        sha256 = "abc"
        secrets = { bot_token = "NOT AN ENV", other = 3 }
        config = { a = 1 }

        [[plugins]]
        name = "echo"
        path = "again.wasm"

        [[plugins]]
        name = ""
        path = "x"

        [[plugins]]
        name = "kv"

        [[plugins]]
        path = "y"
    """
    t = 'config.toml: [[plugins]] #2 (name "telegram")'
    assert problems(text) == [
        f"{t} timeout_ms: must be a positive integer (got 0)",
        f"{t} memory_max_pages: must be an integer from 1 to 65536 (got 0)",
        f"{t} max_output_bytes: must be a positive integer (got -1)",
        f'{t} sha256: must be 64 hexadecimal characters (got "abc")',
        f'{t} secrets.bot_token: must be the name of an environment variable (letters, digits, _) (got "NOT AN ENV")',
        f"{t} secrets.other: must be a string (got 3)",
        f"{t} config.a: must be a string (got 1)",
        'config.toml: [[plugins]] #4 (name "") name: must not be empty (got "")',
        'config.toml: [[plugins]] #5 (name "kv") path: is required',
        "config.toml: [[plugins]] #6 name: is required",
        # an entry that is right in itself is still checked against the others
        'config.toml: [[plugins]] #3 (name "echo") name: must be unique, [[plugins]] #1 has the same name (got "echo")',
    ]


def test_plugins_must_be_an_array_of_tables():
    assert problems("[plugins]\nname = 'x'\n") == [
        "config.toml: plugins: must be an array of tables ([[...]]) (got a table)"
    ]
    assert problems("plugins = [1]\n") == ["config.toml: [[plugins]] #1: must be a table (got 1)"]


# --------------------------------------------------------------------------
# [[bindings]]


def test_bindings_to_unknown_agents():
    text = """
        [agents.work]
        [[bindings]]
        channel = "telegram"
        agent_id = "wrok"
        [[bindings]]
        agent_id = "work"
        peer = "x"
    """
    # what the schema finds comes first, then the checks across sections
    assert problems(text) == [
        'config.toml: [[bindings]] #2 peer: unknown key (did you mean "peer_id"?)',
        "config.toml: [[bindings]] #2 channel: is required",
        'config.toml: [[bindings]] #1 (channel "telegram") agent_id: unknown agent, must be one of default, work'
        ' (got "wrok")',
    ]


def test_duplicate_bindings():
    text = """
        [agents.work]
        [[bindings]]
        channel = "telegram"
        peer_id = "g1"
        agent_id = "work"
        [[bindings]]
        channel = "telegram"
        agent_id = "work"
        [[bindings]]
        peer_id = "g1"
        channel = "telegram"
        agent_id = "default"
        [[bindings]]
        channel = "telegram"
        peer_id = "g2"
        agent_id = "default"
    """
    assert problems(text) == [
        'config.toml: [[bindings]] #3 (channel "telegram"): matches the same messages as [[bindings]] #1'
        ' (peer_id "g1", channel "telegram"); remove one'
    ]


# --------------------------------------------------------------------------
# several at once


def test_every_problem_is_reported_at_once():
    text = """
        [gateway]
        port = 99999
        bind = "0.0.0.0"
        [agent]
        provider = "antropic"
        [budgets]
        daily = -1
        [[plugins]]
        name = "x"
        path = "x.wasm"
        capabilities = ["ftp:x"]
        [[bindings]]
        channel = "c"
        agent_id = "nobody"
    """
    got = problems(text)
    assert len(got) == 6, got
    assert got[0] == "config.toml: [gateway] port: must be an integer from 0 to 65535 (got 99999)"
    assert any("[agent] provider" in p for p in got)
    assert any("[budgets] daily" in p for p in got)
    assert any("capabilities #1" in p for p in got)
    assert any("[[bindings]] #1" in p and "agent_id" in p for p in got)
    assert any("[gateway] bind" in p and "token is required" in p for p in got)


def test_secrets_are_never_echoed():
    for text in ('[gateway]\ntoken = ["sk-123"]\n', '[agent]\napi_key = ["sk-123"]\n'):
        (problem,) = problems(text)
        assert "sk-123" not in problem and problem.endswith(": must be a string")
