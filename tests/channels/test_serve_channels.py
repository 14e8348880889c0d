"""Channels through a real ``exoclaw serve`` process: kill -9 durability and the example config.

The fake Bot API (conftest.FakePlatform) runs in this process; the gateway is
a subprocess started with a config file, like a user would; webhooks are
plain HTTP POSTs (what ``curl`` sends).
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.channels.conftest import TOKEN, WEBHOOK_SECRET, FakePlatform, Serve, telegram_update, write_config
from tests.serving import clean_env, run_cli

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "config.toml"


def test_kill_9_between_acknowledgement_and_reply_then_the_reply_is_sent_once(tmp_path, wasm_build):
    env = clean_env(tmp_path, TG_TOKEN_VAR=TOKEN, TG_SECRET_VAR=WEBHOOK_SECRET)
    text = "please answer slowly, one word at a time, so that the gateway can be killed mid-turn"
    with FakePlatform() as fake:
        cfg = write_config(tmp_path, wasm_build["telegram"], fake.base, chunk_delay_s=0.5)

        # life 1: acknowledged (stored), then killed while the slow turn is still streaming
        first = Serve(tmp_path, cfg, env, 1)
        try:
            status, body, ack_s = first.post_update(telegram_update(10001, text=text))
            assert status == 200 and body["ok"] is True, body
            assert ack_s < 1.0
            deadline = time.monotonic() + 5
            while "event=turn_start" not in first.log() and time.monotonic() < deadline:
                time.sleep(0.02)
            assert "event=turn_start" in first.log(), first.log()  # the slow turn is under way…
            time.sleep(0.3)
            assert fake.count() == 0  # …and its reply not sent yet
        finally:
            first.kill9()
        time.sleep(1.0)
        assert fake.count() == 0, "the reply went out before the kill: the window was missed"
        assert "event=webhook_accepted" in first.log()

        # life 2: the pending item is answered after the restart
        second = Serve(tmp_path, cfg, env, 2)
        try:
            assert fake.wait_sync(1, timeout=30), second.log()
            time.sleep(2.0)  # long enough for a second send to show up
            assert fake.count() == 1
            assert "channel deliveries: failed 0, ignored 0, pending 0, replied 1" in second.status(tmp_path, env)
        finally:
            assert second.stop() == 0
        assert "event=inbox_resume items=1" in second.log()

        # life 3: a reply recorded as sent is never sent again
        third = Serve(tmp_path, cfg, env, 3)
        try:
            time.sleep(2.0)
            assert "channel deliveries: failed 0, ignored 0, pending 0, replied 1" in third.status(tmp_path, env)
            # and the platform retrying the old update now is acknowledged, not processed
            status, body, _ = third.post_update(telegram_update(10001, text=text))
            assert (status, body) == (200, {"ok": True, "duplicate": True})
            time.sleep(1.0)
            history = third.history("default:telegram:4242:-100123")
        finally:
            assert third.stop() == 0
        assert "event=inbox_resume" not in third.log()

    (got,) = fake.received
    assert got["path"] == f"/bot{TOKEN}/sendMessage"
    assert got["json"]["chat_id"] == -100123 and got["json"]["text"].startswith(f"You said: {text}\n\n[echo: ")
    # the killed turn left nothing half-written: one exchange in the session, the one that was sent
    assert [(m["role"], m["content"]) for m in history] == [("user", text), ("assistant", got["json"]["text"])]
    for life in (first, second, third):
        assert TOKEN not in life.log() and WEBHOOK_SECRET not in life.log()


def test_kill_9_while_the_reply_is_being_retried_resends_the_kept_reply(tmp_path, wasm_build):
    """The reply is committed to the inbox before the platform is called: a restart re-sends
    that reply (the same text) instead of running the turn a second time."""
    env = clean_env(tmp_path, TG_TOKEN_VAR=TOKEN, TG_SECRET_VAR=WEBHOOK_SECRET)
    with FakePlatform(statuses=[500]) as fake:
        cfg = write_config(tmp_path, wasm_build["telegram"], fake.base, chunk_delay_s=0.0)
        first = Serve(tmp_path, cfg, env, 1)
        try:
            assert first.post_update(telegram_update(10001))[0] == 200
            assert fake.wait_sync(1, timeout=20), first.log()  # refused with a 500 …
        finally:
            first.kill9()  # … and killed during the backoff before the next attempt
        assert fake.count() == 1, "the retry went out before the kill: the window was missed"

        second = Serve(tmp_path, cfg, env, 2)
        try:
            assert fake.wait_sync(2, timeout=20), second.log()
            time.sleep(1.0)
            history = second.history("default:telegram:4242:-100123")
            deliveries = second.rpc("status")["deliveries"]
        finally:
            assert second.stop() == 0
    refused, sent = fake.received
    assert sent["path"] == refused["path"] == f"/bot{TOKEN}/sendMessage"
    assert sent["json"] == refused["json"]  # the kept reply, not a new turn's
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert history[1]["content"] == sent["json"]["text"]
    assert deliveries == {"pending": 0, "replied": 1, "failed": 0, "ignored": 0}
    assert "event=turn_start" not in second.log()


CRASH_PLUGIN = """
import os, signal

from exoclaw_hooks import hookimpl


@hookimpl
def gateway_startup(host):
    # fault injection: the process dies the instant a turn's transaction has committed
    real = host.store.append_turn

    async def append_turn(*args, **kwargs):
        turn = await real(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)
        return turn

    host.store.append_turn = append_turn
"""


def test_kill_9_the_instant_the_turn_commits_never_runs_the_turn_twice(tmp_path, wasm_build):
    """The turn and its pending reply are one transaction: a gateway killed right after the
    commit (before anything else happens) re-sends that reply after the restart, and the
    turn is neither run nor stored again."""
    (tmp_path / "crash_after_commit.py").write_text(CRASH_PLUGIN)
    env = clean_env(tmp_path, TG_TOKEN_VAR=TOKEN, TG_SECRET_VAR=WEBHOOK_SECRET)
    with FakePlatform() as fake:
        cfg = write_config(tmp_path, wasm_build["telegram"], fake.base, chunk_delay_s=0.0)
        crashing = tmp_path / "crashing.toml"
        crashing.write_text('[hooks]\nload = ["crash_after_commit"]\n' + cfg.read_text())
        first = Serve(tmp_path, crashing, {**env, "PYTHONPATH": str(tmp_path)}, 1)
        try:
            assert first.post_update(telegram_update(10001, text="remember me once"))[0] == 200
            first.proc.wait(timeout=20)  # it killed itself at the commit
        finally:
            first.kill9()
        assert "event=turn_start" in first.log()
        assert fake.count() == 0

        second = Serve(tmp_path, cfg, env, 2)
        try:
            assert fake.wait_sync(1, timeout=20), second.log()
            time.sleep(1.0)  # long enough for a second send to show up
            history = second.history("default:telegram:4242:-100123")
        finally:
            assert second.stop() == 0
    (sent,) = fake.received
    assert "event=turn_start" not in second.log()  # not run again …
    assert [(m["role"], m["content"]) for m in history] == [  # … nor stored again
        ("user", "remember me once"), ("assistant", sent["json"]["text"])]
    assert sent["json"]["text"].startswith("You said: remember me once")


def example_config_for_a_local_bot_api(tmp_path: Path, api_base: str) -> Path:
    """examples/config.toml as a new user would adapt it: plugin paths, Telegram pointed at the fake."""
    text = EXAMPLE.read_text()
    build = REPO / "wasm_plugins" / "build"
    text = text.replace('"../wasm_plugins/build/', f'"{build}/')  # the copy no longer sits in examples/
    section = text.index('name = "telegram"')
    head, tail = text[:section], text[section:]
    tail = tail.replace('capabilities = ["http:api.telegram.org"]', 'capabilities = ["http:127.0.0.1"]', 1)
    tail = tail.replace('api_base = "https://api.telegram.org"', f'api_base = "{api_base}"', 1)
    assert api_base in tail and "http:127.0.0.1" in tail, "the example's telegram section changed shape"
    cfg = tmp_path / "config.toml"
    cfg.write_text(head + tail)
    return cfg


def test_example_config_with_a_local_fake_bot_api(tmp_path, wasm_build):
    """The issue's "Done when": the example config, a curl of an update, a 200 at once, the reply arrives."""
    env = clean_env(tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET)
    with FakePlatform() as fake:
        cfg = example_config_for_a_local_bot_api(tmp_path, fake.base)
        check = run_cli(tmp_path, "config", "check", "--config", str(cfg), env=env)
        assert check.returncode == 0, check.stderr
        served = Serve(tmp_path, cfg, env, 1)
        try:
            assert "telegram (channel)" in served.banner
            status, body, ack_s = served.post_update(telegram_update())
            assert status == 200 and body["ok"] is True, body
            assert ack_s < 1.0
            assert fake.wait_sync(1, timeout=20), served.log()
            # the example's webhook_secret is enforced too
            assert served.post_update(telegram_update(10002), secret="guess")[0] == 401
            time.sleep(0.5)
            out = served.status(tmp_path, env)
        finally:
            assert served.stop() == 0
    (got,) = fake.received
    assert got["path"] == f"/bot{TOKEN}/sendMessage"
    assert got["json"]["chat_id"] == -100123
    assert got["json"]["text"].startswith("You said: hello bot\n\n[echo: ")
    assert "replied 1" in out
    assert TOKEN not in served.log() and WEBHOOK_SECRET not in served.log()
