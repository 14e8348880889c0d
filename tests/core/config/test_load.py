"""Finding the file, zero-config, the environment and the command line (SPEC §3, seed T048)."""

from __future__ import annotations

from pathlib import Path

import pytest

from exoclaw_core.bootstrap import load_checked, load_settings
from exoclaw_core.config import data_dir, resolve_config_path
from tests.harness import parse_settings
from exoclaw_hooks import ConfigError
from exoclaw_core.config import Settings

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "config.toml"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def problems_of(call) -> list[str]:
    with pytest.raises(ConfigError) as info:
        call()
    return info.value.problems


# --------------------------------------------------------------------------
# where the file is


def test_no_file_at_the_default_path_is_zero_config(home):
    env = {"HOME": str(home)}
    assert resolve_config_path(None, env) == (None, False)
    s, pm = load_checked(env=env)
    assert isinstance(s, Settings)
    assert (s.gateway.bind, s.gateway.port, s.gateway.token) == ("127.0.0.1", 7200, None)
    assert s.default_agent == "default" and list(s.agents) == ["default"]
    agent = s.agents["default"]
    assert (agent.provider, agent.model, agent.api_key, agent.soul_path) == ("echo", "echo", None, None)
    built = pm.sections
    assert built["plugins"] == () and built["bindings"] == ()
    b = built["budgets"]
    assert (b.session, b.daily, b.monthly, b.agents) == (None, None, None, {})
    assert s.config_path is None
    assert s.data_dir == str(home / ".exoclaw")


def test_default_path_is_used_when_present(home):
    f = write(home / ".exoclaw" / "config.toml", "[gateway]\nport = 7300\n")
    env = {"HOME": str(home)}
    assert resolve_config_path(None, env) == (f, False)
    s = load_settings(env=env)
    assert s.gateway.port == 7300
    assert s.config_path == str(f) and s.config_dir == str(f.parent)


def test_missing_explicit_config_is_an_error(home, tmp_path):
    env = {"HOME": str(home)}
    missing = tmp_path / "nope.toml"
    assert problems_of(lambda: resolve_config_path(str(missing), env)) == [f"{missing}: no such config file"]
    assert problems_of(lambda: load_settings(str(missing), env)) == [f"{missing}: no such config file"]
    env["EXOCLAW_CONFIG"] = str(missing)
    assert problems_of(lambda: load_settings(None, env)) == [f"{missing}: no such config file"]


def test_exoclaw_config_overrides_the_default_path(home, tmp_path):
    write(home / ".exoclaw" / "config.toml", "[gateway]\nport = 1\n")
    other = write(tmp_path / "elsewhere" / "exo.toml", "[gateway]\nport = 2\n")
    cli = write(tmp_path / "cli.toml", "[gateway]\nport = 3\n")
    env = {"HOME": str(home), "EXOCLAW_CONFIG": str(other)}
    assert resolve_config_path(None, env) == (other, True)
    assert load_settings(env=env).gateway.port == 2
    # --config wins over $EXOCLAW_CONFIG
    assert resolve_config_path(str(cli), env) == (cli, True)
    assert load_settings(str(cli), env).gateway.port == 3
    # an empty variable counts as unset
    assert load_settings(env={"HOME": str(home), "EXOCLAW_CONFIG": ""}).gateway.port == 1


def test_tilde_in_the_config_path(home):
    f = write(home / "cfg" / "exo.toml", "")
    assert resolve_config_path("~/cfg/exo.toml", {"HOME": str(home)}) == (f, True)


def test_file_label_is_the_file_name(tmp_path, home):
    f = write(tmp_path / "my-exo.toml", '[agent]\nprovider = "antropic"\n')
    assert problems_of(lambda: load_settings(str(f), {"HOME": str(home)})) == [
        'my-exo.toml: [agent] provider: must be one of anthropic, openai, echo (got "antropic")'
    ]


def test_data_dir():
    assert data_dir({"HOME": "/home/u"}) == Path("/home/u/.exoclaw")
    assert data_dir({"HOME": "/home/u", "EXOCLAW_HOME": "/srv/exo"}) == Path("/srv/exo")
    assert data_dir({"HOME": "/home/u", "EXOCLAW_HOME": "~/data"}) == Path("/home/u/data")
    assert data_dir({"HOME": "/home/u", "EXOCLAW_HOME": ""}) == Path("/home/u/.exoclaw")
    s = parse_settings("", env={"HOME": "/home/u", "EXOCLAW_HOME": "/srv/exo"})
    assert s.data_dir == "/srv/exo"


# --------------------------------------------------------------------------
# malformed TOML


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[gateway]\nport = = 1\n", "config.toml: invalid TOML at line 2, column 8: invalid value"),
        ("[a]\nx = 1\n[a]\n", "config.toml: invalid TOML at line 3, column 3: cannot declare ('a',) twice"),
        ('[gateway]\nbind = "127.0.0.1', "config.toml: invalid TOML at line 2, column 18: unterminated string"),
    ],
)
def test_malformed_toml_reports_line_and_column(text, expected):
    assert problems_of(lambda: parse_settings(text, env={})) == [expected]


def test_malformed_toml_in_a_file(tmp_path):
    f = write(tmp_path / "bad.toml", "[gateway]\nport 7200\n")
    (problem,) = problems_of(lambda: load_settings(str(f), {"HOME": str(tmp_path)}))
    assert problem.startswith("bad.toml: invalid TOML at line 2, column 6: ")


# --------------------------------------------------------------------------
# zero-config provider choice and API keys


@pytest.mark.parametrize(
    "env, provider, model, key",
    [
        ({}, "echo", "echo", None),
        ({"ANTHROPIC_API_KEY": "sk-ant"}, "anthropic", "claude-sonnet-4-5", "sk-ant"),
        ({"OPENAI_API_KEY": "sk-oai"}, "openai", "gpt-4o-mini", "sk-oai"),
        ({"ANTHROPIC_API_KEY": "sk-ant", "OPENAI_API_KEY": "sk-oai"}, "anthropic", "claude-sonnet-4-5", "sk-ant"),
        ({"ANTHROPIC_API_KEY": "", "OPENAI_API_KEY": "sk-oai"}, "openai", "gpt-4o-mini", "sk-oai"),
    ],
)
def test_zero_config_provider_choice(home, env, provider, model, key):
    agent = load_settings(env={"HOME": str(home), **env}).agents["default"]
    assert (agent.provider, agent.model, agent.api_key) == (provider, model, key)


def test_api_key_from_config_wins_over_environment():
    env = {"ANTHROPIC_API_KEY": "sk-env", "OPENAI_API_KEY": "sk-oai"}
    s = parse_settings('[agent]\napi_key = "sk-file"\n[agent.fallback]\nprovider = "openai"\nmodel = "gpt-4o"\n',
                       env=env)
    agent = s.agents["default"]
    assert (agent.provider, agent.api_key) == ("anthropic", "sk-file")
    assert (agent.fallback.provider, agent.fallback.api_key, agent.fallback.max_tokens) == ("openai", "sk-oai", 4096)
    s = parse_settings('[agent]\nprovider = "openai"\napi_key = ""\n', env=env)
    assert s.agents["default"].api_key == "sk-oai"  # empty = not given


def test_default_model_follows_an_explicit_provider():
    s = parse_settings('[agent]\nprovider = "openai"\n[agents.b]\nprovider = "anthropic"\n[agents.c]\n', env={})
    assert s.agents["default"].model == "gpt-4o-mini"
    assert s.agents["b"].model == "claude-sonnet-4-5"
    assert (s.agents["c"].provider, s.agents["c"].model, s.agents["c"].id) == ("echo", "echo", "c")


# --------------------------------------------------------------------------
# token and bind


def test_non_loopback_bind_without_token():
    assert problems_of(lambda: parse_settings('[gateway]\nbind = "0.0.0.0"\n', env={})) == [
        'config.toml: [gateway] bind: is not a loopback address, so a token is required:'
        ' set $EXOCLAW_TOKEN or [gateway] token (got "0.0.0.0")'
    ]


@pytest.mark.parametrize("bind", ["127.0.0.1", "127.8.9.10", "::1", "localhost", "LOCALHOST"])
def test_loopback_binds_need_no_token(bind):
    assert parse_settings(f'[gateway]\nbind = "{bind}"\n', env={}).gateway.bind == bind


LONG_TOKEN = "t0k3n-0123456789abcdef"


@pytest.mark.parametrize("bind", ["0.0.0.0", "::", "192.168.1.10", "example.com"])
def test_any_other_bind_needs_a_token(bind):
    assert problems_of(lambda: parse_settings(f'[gateway]\nbind = "{bind}"\n', env={}))
    s = parse_settings(f'[gateway]\nbind = "{bind}"\n', env={"EXOCLAW_TOKEN": LONG_TOKEN})
    assert s.gateway.token == LONG_TOKEN


def test_a_token_guarding_a_public_bind_has_at_least_16_non_space_characters():
    """Issue 16: a guessable token must not guard a public port (a loopback bind may use any)."""
    assert problems_of(lambda: parse_settings('[gateway]\nbind = "0.0.0.0"\ntoken = "hunter2"\n', env={})) == [
        'config.toml: [gateway] bind: is not a loopback address, so the token ([gateway] token) must have at least'
        ' 16 non-space characters (it has 7) (got "0.0.0.0")'
    ]
    assert problems_of(lambda: parse_settings('[gateway]\nbind = "0.0.0.0"\n',
                                              env={"EXOCLAW_TOKEN": "a b c d e f g h i j k l m n o"})) == [
        'config.toml: [gateway] bind: is not a loopback address, so the token ($EXOCLAW_TOKEN) must have at least'
        ' 16 non-space characters (it has 15) (got "0.0.0.0")'
    ]
    assert parse_settings('[gateway]\nbind = "0.0.0.0"\n', env={"EXOCLAW_TOKEN": "a b c d e f g h i j k l m n o p"})
    assert parse_settings('[gateway]\ntoken = "short"\n', env={}).gateway.token == "short"  # loopback


def test_a_whitespace_only_token_is_refused_on_any_bind():
    assert problems_of(lambda: parse_settings('[gateway]\ntoken = "   "\n', env={})) == [
        "config.toml: [gateway] token: is only whitespace: set a real token or leave it empty"
    ]
    assert problems_of(lambda: parse_settings('[gateway]\nbind = "0.0.0.0"\n', env={"EXOCLAW_TOKEN": " \t "})) == [
        "config.toml: $EXOCLAW_TOKEN: is only whitespace: set a real token or leave it empty"
    ]


def test_token_from_env_wins_over_config():
    text = '[gateway]\nbind = "0.0.0.0"\ntoken = "from-file-0123456789"\n'
    assert parse_settings(text, env={"EXOCLAW_TOKEN": "from-env-0123456789"}).gateway.token == "from-env-0123456789"
    assert parse_settings(text, env={}).gateway.token == "from-file-0123456789"
    assert parse_settings(text, env={"EXOCLAW_TOKEN": ""}).gateway.token == "from-file-0123456789"


def test_empty_token_counts_as_none():
    assert parse_settings('[gateway]\ntoken = ""\n', env={}).gateway.token is None
    assert problems_of(lambda: parse_settings('[gateway]\nbind = "0.0.0.0"\ntoken = ""\n', env={"EXOCLAW_TOKEN": ""}))


def test_port_zero_is_allowed():
    assert parse_settings("[gateway]\nport = 0\n", env={}).gateway.port == 0


# --------------------------------------------------------------------------
# command-line overrides


def test_overrides_replace_the_file_values(home):
    s = load_settings(env={"HOME": str(home)}, overrides={"port": 0, "bind": "localhost"})
    assert (s.gateway.bind, s.gateway.port) == ("localhost", 0)
    s = parse_settings("[gateway]\nport = 1\n", env={}, overrides={"port": 9000, "bind": None})
    assert (s.gateway.bind, s.gateway.port) == ("127.0.0.1", 9000)


def test_overrides_are_revalidated_and_labelled_by_flag(home):
    env = {"HOME": str(home)}
    assert problems_of(lambda: load_settings(env=env, overrides={"bind": "0.0.0.0"})) == [
        '--bind: is not a loopback address, so a token is required: set $EXOCLAW_TOKEN or [gateway] token'
        ' (got "0.0.0.0")'
    ]
    assert problems_of(lambda: load_settings(env=env, overrides={"port": 70000})) == [
        "--port: must be an integer from 0 to 65535 (got 70000)"
    ]
    s = load_settings(env={**env, "EXOCLAW_TOKEN": LONG_TOKEN}, overrides={"bind": "0.0.0.0"})
    assert s.gateway.bind == "0.0.0.0"
    assert problems_of(lambda: load_settings(env={**env, "EXOCLAW_TOKEN": "t"}, overrides={"bind": "0.0.0.0"})) == [
        "--bind: is not a loopback address, so the token ($EXOCLAW_TOKEN) must have at least 16 non-space"
        ' characters (it has 1) (got "0.0.0.0")'
    ]
    with pytest.raises(ValueError):
        load_settings(env=env, overrides={"nope": 1})


# --------------------------------------------------------------------------
# paths


def test_relative_paths_resolve_against_the_config_dir(tmp_path, home):
    f = write(tmp_path / "conf" / "exo.toml", """
[agent]
soul_path = "souls/me.md"
[agents.b]
soul_path = "~/b.md"
[agents.c]
soul_path = "/abs/c.md"
[[plugins]]
name = "echo"
path = "../wasm/echo.wasm"
[[plugins]]
name = "kv"
path = "~/plugins/kv.wasm"
""")
    s, pm = load_checked(str(f), env={"HOME": str(home)})
    conf = tmp_path / "conf"
    assert s.agents["default"].soul_path == str(conf / "souls" / "me.md")
    assert s.agents["b"].soul_path == str(home / "b.md")
    assert s.agents["c"].soul_path == "/abs/c.md"
    assert [p.path for p in pm.sections["plugins"]] == [
        str(tmp_path / "wasm" / "echo.wasm"), str(home / "plugins" / "kv.wasm")]


def test_a_relative_config_path_gives_an_absolute_config_dir(tmp_path, home, monkeypatch):
    write(tmp_path / "exo.toml", '[[plugins]]\nname = "e"\npath = "e.wasm"\n')
    monkeypatch.chdir(tmp_path)
    s, pm = load_checked("exo.toml", env={"HOME": str(home)})
    assert s.config_dir == str(tmp_path) and pm.sections["plugins"][0].path == str(tmp_path / "e.wasm")


# --------------------------------------------------------------------------
# the shipped example


def test_the_example_config_loads(home):
    s, pm = load_checked(str(EXAMPLE), env={"HOME": str(home)})
    built = pm.sections
    assert s.default_agent == "personal" and set(s.agents) == {"personal", "work"}
    assert s.agents["personal"].provider == "echo"
    assert s.agents["personal"].fallback is None  # shown commented: it needs a key the example cannot assume
    assert [p.name for p in built["plugins"]] == ["echo", "kv", "fetch", "mock", "telegram"]
    wasm = EXAMPLE.parent.parent / "wasm_plugins" / "build"
    assert all(p.path == str(wasm / f"{p.name}.wasm") for p in built["plugins"])
    assert built["budgets"].agents["work"].daily == 100000
    assert "anthropic:claude-sonnet-4-5" in built["pricing"]
    assert len(built["bindings"]) == 2


def test_the_example_documents_every_key():
    from exoclaw_core.config.schema import ConfigSchema

    text = EXAMPLE.read_text()

    def names(schema, seen=()):
        for key, fld in schema.fields.items():
            yield key
            inner = getattr(fld, "schema", None) or getattr(getattr(fld, "inner", None), "schema", None) \
                or getattr(getattr(fld, "value_field", None), "schema", None)
            if inner is not None and type(inner) not in seen:
                yield from names(inner, (*seen, type(inner)))

    missing = sorted({k for k in names(ConfigSchema()) if k not in text})
    assert missing == []
