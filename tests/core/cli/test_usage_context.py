"""``exoclaw usage --context``: each turn's context composition, as stored with the turn."""

from __future__ import annotations

import json

from tests.serving import clean_env, run_cli, start_serve, stop


def test_usage_context_shows_what_each_turn_was_made_of(tmp_path):
    env = clean_env(tmp_path, USER="ann")
    served = start_serve(tmp_path, env=env)
    try:
        said = ["my sister lives in Porto"] + [f"small talk number {i}" for i in range(6)]
        for text in said + ["where does my sister live?"]:  # the first is out of the 5-turn window by then
            assert run_cli(tmp_path, "chat", text, "--url", served.url, env=env).returncode == 0
    finally:
        stop(served)
    table = run_cli(tmp_path, "usage", "--context", env=env)
    rows = json.loads(run_cli(tmp_path, "usage", "--context", "--json", env=env).stdout)
    assert table.returncode == 0 and "recall" in table.stdout.splitlines()[0]
    assert [r["seq"] for r in rows] == list(range(8, 0, -1))  # newest first
    last = rows[0]["context"]
    assert last["recall"] > 0 and last["message"] > 0 and set(last) >= {"soul", "system", "window", "recall"}
