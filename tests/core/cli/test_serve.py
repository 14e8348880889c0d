"""A real ``exoclaw serve`` subprocess: start-up, signals, crashes, and the terminal client."""

from __future__ import annotations

import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.serving import EXE, clean_env, run_cli, start_serve, stop


def test_serve_zero_config_answers_health_and_stops_on_sigterm(tmp_path):
    served = start_serve(tmp_path)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{served.port}/healthz", timeout=5) as r:
            assert r.status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{served.port}/readyz", timeout=5) as r:
            assert r.status == 200
        assert "ECHO provider" in served.banner
    finally:
        t0 = time.monotonic()
        code, out, err = stop(served)
    assert code == 0, err
    assert time.monotonic() - t0 < 8
    assert "Traceback" not in err


def test_chat_and_status_against_a_real_gateway_and_kill_9_durability(tmp_path):
    served = start_serve(tmp_path)
    try:
        r = run_cli(tmp_path, "chat", "hello from the terminal", "--url", f"http://127.0.0.1:{served.port}")
        assert r.returncode == 0, r.stderr
        assert "You said: hello from the terminal" in r.stdout
        assert re.search(r"\[\d+ in / \d+ out", r.stderr)
        r = run_cli(tmp_path, "status", "--url", served.url)
        assert r.returncode == 0, r.stderr
        assert "sessions: 1" in r.stdout and "agent default" in r.stdout
    finally:
        served.proc.kill()  # kill -9: no clean shutdown
        served.proc.communicate()
    served = start_serve(tmp_path)
    try:
        r = run_cli(tmp_path, "chat", "second", "--url", served.url)
        assert r.returncode == 0
        import asyncio

        from tests.harness import WSClient

        async def history():
            import aiohttp

            async with aiohttp.ClientSession() as s, s.ws_connect(served.url) as ws:
                c = WSClient(ws)
                await c.recv()
                sessions = (await c.request("session.list"))["result"]
                return (await c.request("chat.history", {"session": sessions[0]["key"]}))["result"]

        messages = asyncio.run(history())
        assert [m["content"] for m in messages if m["role"] == "user"] == ["hello from the terminal", "second"]
    finally:
        stop(served)


def test_chat_exit_code_on_error_and_unreachable_gateway(tmp_path):
    r = run_cli(tmp_path, "chat", "hi", "--url", "ws://127.0.0.1:9/ws")
    assert r.returncode == 1
    assert "cannot reach the gateway" in r.stderr and "Traceback" not in r.stderr


def test_broken_config_exits_1_with_the_message_and_no_traceback(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text('[agent]\nprovider = "antropic"\n[gateway]\nprot = 1\n')
    r = run_cli(tmp_path, "serve", "--config", str(cfg))
    assert r.returncode == 1
    assert 'config.toml: [agent] provider: must be one of anthropic, openai, echo (got "antropic")' in r.stderr
    assert "[gateway] prot: unknown key" in r.stderr
    assert "Traceback" not in r.stderr
    r = run_cli(tmp_path, "config", "check", "--config", str(cfg))
    assert r.returncode == 1 and "antropic" in r.stderr
    r = run_cli(tmp_path, "serve", "--config", str(tmp_path / "missing.toml"))
    assert r.returncode == 1 and "no such config file" in r.stderr


def test_public_bind_without_token_is_refused(tmp_path):
    r = run_cli(tmp_path, "serve", "--bind", "0.0.0.0")
    assert r.returncode == 1
    assert "token" in r.stderr and "Traceback" not in r.stderr


def test_public_bind_with_token_requires_it(tmp_path):
    env = clean_env(tmp_path, EXOCLAW_TOKEN="t0k3n-for-the-test")
    served = start_serve(tmp_path, "--bind", "0.0.0.0", env=env)
    try:
        assert "auth: on" in served.banner
        r = run_cli(tmp_path, "status", "--url", served.url, env=clean_env(tmp_path))
        assert r.returncode == 1 and "requires a token" in r.stderr
        r = run_cli(tmp_path, "status", "--url", served.url, env=env)
        assert r.returncode == 0, r.stderr
    finally:
        stop(served)


def test_config_check_and_plugins_on_the_example(tmp_path):
    example = Path(__file__).resolve().parents[3] / "examples" / "config.toml"
    r = run_cli(tmp_path, "config", "check", "--config", str(example))
    assert r.returncode == 0, r.stderr
    assert "OK" in r.stdout
    r = run_cli(tmp_path, "plugins", "--config", str(example))
    assert r.returncode == 0, r.stderr
    assert "router" in r.stdout and "builtin" in r.stdout


def test_version_and_help(tmp_path):
    r = run_cli(tmp_path, "--version")
    from exoclaw_core import __version__

    assert r.returncode == 0 and r.stdout.strip() == f"exoclaw {__version__}"
    r = run_cli(tmp_path)
    assert r.returncode == 2 and "serve" in r.stdout


def test_usage_without_records_is_one_sentence(tmp_path):
    r = run_cli(tmp_path, "usage")
    assert r.returncode == 1 and "no usage recorded yet" in r.stderr and "Traceback" not in r.stderr


def test_hooks_disable_unknown_plugin_is_a_config_error(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[hooks]\ndisable = ["routr"]\n')
    r = run_cli(tmp_path, "config", "check", "--config", str(cfg))
    assert r.returncode == 1
    assert 'c.toml: [hooks] disable: unknown plugin "routr"' in r.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signals_finish_a_turn_in_flight(tmp_path, sig):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[agent]\nprovider = "echo"\noptions = { chunk_delay_s = 0.1 }\n')
    served = start_serve(tmp_path, "--config", str(cfg))
    client = subprocess.Popen(
        [*EXE, "chat", "one two three four five six seven eight nine ten eleven twelve", "--url", served.url],
        env=clean_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    time.sleep(0.8)  # the turn is streaming
    code, _, err = stop(served, sig)
    out, cerr = client.communicate(timeout=10)
    assert code == 0, err
    assert "twelve" in out and client.returncode == 0, cerr
