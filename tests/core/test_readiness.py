"""Readiness beyond the schema: API keys, tool names, plugins that loaded (``config check``, ``serve``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.serving import clean_env, run_cli, start_serve, stop

BUILD = Path(__file__).resolve().parents[2] / "wasm_plugins" / "build"


def check(tmp_path: Path, text: str, **env: str):
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    return run_cli(tmp_path, "config", "check", "--config", str(cfg), env=clean_env(tmp_path, **env))


def test_a_provider_without_its_key_is_a_problem(tmp_path):
    text = '[agent]\nprovider = "openai"\n[agents.work]\nprovider = "echo"\nfallback = { provider = "anthropic", model = "claude-haiku-4-5" }\n'
    r = check(tmp_path, text)
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        'c.toml: [agent] provider: "openai" needs an API key: set $OPENAI_API_KEY or api_key in [agent] (neither is set)',
        'c.toml: [agents.work.fallback] provider: "anthropic" needs an API key: set $ANTHROPIC_API_KEY or api_key '
        'in [agents.work.fallback] (neither is set)',
    ]
    r = check(tmp_path, text, OPENAI_API_KEY="sk-from-env", ANTHROPIC_API_KEY="sk-ant-from-env")
    assert r.returncode == 0, r.stderr
    assert "OK" in r.stdout and "sk-" not in r.stdout + r.stderr
    r = check(tmp_path, text.replace('provider = "openai"', 'provider = "openai"\napi_key = "sk-in-file"'),
              ANTHROPIC_API_KEY="sk-ant-from-env")
    assert r.returncode == 0, r.stderr


def test_a_tool_no_plugin_offers_is_a_problem(tmp_path):
    text = (f'[agent]\ntools = ["echo", "ecko", "remember"]\n'
            f'[[plugins]]\nname = "echo"\npath = "{BUILD / "echo.wasm"}"\n'
            f'[[plugins]]\nname = "kv"\npath = "{BUILD / "kv.wasm"}"\ncapabilities = ["store:kv"]\n')
    r = check(tmp_path, text)
    assert r.returncode == 1
    [line] = [x for x in r.stderr.splitlines() if x.startswith("c.toml:")]
    assert line.startswith('c.toml: [agent] tools: unknown tool "ecko" (did you mean "echo"? tools offered by the '
                           'loaded plugins: ')
    offered = line.split("tools offered by the loaded plugins: ", 1)[1].rstrip(")").split(", ")
    assert {"echo", "recall", "remember"} <= set(offered) and offered == sorted(offered)
    r = check(tmp_path, text.replace('"ecko", ', ""))
    assert r.returncode == 0, r.stderr


def test_a_plugin_that_does_not_load_is_a_problem(tmp_path):
    r = check(tmp_path, f'[[plugins]]\nname = "echo"\npath = "{tmp_path / "missing.wasm"}"\n')
    assert r.returncode == 1
    [line] = [x for x in r.stderr.splitlines() if x.startswith("c.toml:")]
    assert line.startswith('c.toml: plugin "echo" did not load: ') and line.endswith("missing.wasm")
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("provider, variable", [("openai", "OPENAI_API_KEY"), ("anthropic", "ANTHROPIC_API_KEY")])
def test_serve_warns_at_start_for_an_agent_without_its_key(tmp_path, provider, variable):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[agent]\nprovider = "{provider}"\n')
    served = start_serve(tmp_path, "--config", str(cfg))
    stop(served)
    assert (f"!! agent default has no API key for {provider}: set ${variable} (or api_key in [agent]); "
            "its turns will fail") in served.banner
    served = start_serve(tmp_path, "--config", str(cfg), env=clean_env(tmp_path, **{variable: "sk-x"}))
    stop(served)
    assert "has no API key" not in served.banner
