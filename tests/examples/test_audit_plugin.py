"""The example plugin package (examples/audit-plugin) in a real ``exoclaw serve``.

CI installs it (``pip install ./examples/audit-plugin``): then it is found through its
``exoclaw`` entry point, as a published plugin is. Without the install the same
module is loaded through ``[hooks] load`` (it is on the test path).
"""

from __future__ import annotations

import asyncio
import json
from importlib import metadata
from pathlib import Path

import aiohttp
import pytest

from tests.serving import clean_env, run_cli, start_serve, stop


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "audit-plugin"


def installed() -> bool:
    return any(ep.name == "audit" for ep in metadata.entry_points(group="exoclaw"))


def env_for(tmp_path) -> dict[str, str]:
    """Not installed: the subprocess imports the example from its source directory."""
    return clean_env(tmp_path, **({} if installed() else {"PYTHONPATH": str(EXAMPLE)}))


def config(tmp_path, log) -> str:
    load = "" if installed() else '[hooks]\nload = ["exoclaw_audit:AuditPlugin"]\n'
    path = tmp_path / "exo.toml"
    path.write_text(f'{load}[audit]\npath = "{log}"\ninclude_text = true\n')
    return str(path)


async def chat(port: int, content: str) -> list[dict]:
    async with aiohttp.ClientSession() as s, s.ws_connect(f"ws://127.0.0.1:{port}/ws") as ws:
        await ws.receive_json()  # hello
        await ws.send_json({"id": "1", "method": "chat.send",
                            "params": {"channel": "cli", "account": "ann", "content": content}})
        frames = [await ws.receive_json()]
        while frames[-1].get("event") != "done":
            frames.append(await ws.receive_json())
        return frames


def test_the_example_plugin_configures_its_table_and_runs_in_a_real_serve(tmp_path):
    log = tmp_path / "audit.jsonl"
    env = env_for(tmp_path)
    conf = config(tmp_path, log)
    check = run_cli(tmp_path, "config", "check", "--config", conf, env=env)
    assert check.returncode == 0, check.stderr
    served = start_serve(tmp_path, "--config", conf, env=env)
    try:
        assert "audit" in served.banner
        frames = asyncio.run(chat(served.port, "remember the milk"))
    finally:
        code, _, err = stop(served)  # a clean stop waits for the plugin's after_turn
    assert code == 0, err
    assert frames[-1]["event"] == "done"
    entry = json.loads(log.read_text().splitlines()[0])
    assert entry["said"] == "remember the milk" and entry["session"] == "default:cli:ann:main"


def test_a_wrong_audit_table_stops_config_check_with_its_location(tmp_path):
    bad = tmp_path / "bad.toml"
    load = "" if installed() else '[hooks]\nload = ["exoclaw_audit:AuditPlugin"]\n'
    bad.write_text(f"{load}[audit]\ninclude_text = 1\n")
    check = run_cli(tmp_path, "config", "check", "--config", str(bad), env=env_for(tmp_path))
    assert check.returncode == 1
    assert "bad.toml: [audit] include_text: must be true or false (got 1)" in check.stderr
    assert "bad.toml: [audit] path: is required" in check.stderr


@pytest.mark.skipif(not installed(), reason="pip install ./examples/audit-plugin (CI does) to check the entry point")
def test_installed_it_is_listed_with_its_distribution(tmp_path):
    out = run_cli(tmp_path, "plugins")
    assert out.returncode == 0, out.stderr
    assert any("audit" in line and "exoclaw-audit 0.1.0" in line for line in out.stdout.splitlines())
