"""``exoclaw init``: a config that checks, the key left in the environment unless asked, tools that work."""

from __future__ import annotations

import json
import stat
import subprocess
import tomllib
from pathlib import Path

from tests.serving import EXE, clean_env, readme_block, run_cli, start_serve, stop

KEY = "sk-pasted-DISTINCTIVE-4f2a"


def config_of(tmp_path: Path) -> Path:
    return tmp_path / ".exoclaw" / "config.toml"  # clean_env sets HOME=tmp_path: serve's default path


def init(tmp_path: Path, *args: str, answers: str | None = None, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([*EXE, "init", *args], input=answers, env=clean_env(tmp_path, **env),
                          capture_output=True, text=True, timeout=120)


def test_init_yes_offline_then_serve_streams_a_reply_and_runs_a_bundled_tool(tmp_path):
    r = init(tmp_path, "--yes")
    assert r.returncode == 0, r.stderr
    path = config_of(tmp_path)
    assert f"wrote {path}" in r.stderr and "OK" in r.stdout
    assert "next: exoclaw serve" in r.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = tomllib.loads(path.read_text())
    assert data["agent"] == {"provider": "echo", "model": "echo"}
    assert [p["name"] for p in data["plugins"]] == ["echo", "kv"]
    assert all(Path(p["path"]).is_file() for p in data["plugins"])
    assert "# [[bindings]]" in path.read_text()  # the rest of the example is there to read, commented
    served = start_serve(tmp_path)  # no --config: the file init wrote is the default one
    try:
        r = run_cli(tmp_path, "chat", "hello", "--url", served.url)
        assert r.returncode == 0 and "You said: hello" in r.stdout, r.stderr
        r = run_cli(tmp_path, "chat", '/tool echo {"text": "offline tool"}', "--url", served.url)
        assert r.returncode == 0, r.stderr
        assert "[tool echo " in r.stderr and "[result: offline tool]" in r.stderr
        assert r.stdout.splitlines()[:2] == readme_block("""exoclaw chat '/tool echo {"text": "offline tool"}'""")
    finally:
        stop(served)


def test_init_yes_with_a_key_in_the_environment_references_it(tmp_path):
    r = init(tmp_path, "--yes", OPENAI_API_KEY=KEY)
    assert r.returncode == 0, r.stderr
    text = config_of(tmp_path).read_text()
    assert KEY not in text + r.stdout + r.stderr
    assert tomllib.loads(text)["agent"] == {"provider": "openai", "model": "gpt-4o-mini"}
    assert "read from $OPENAI_API_KEY" in r.stderr


def test_init_interactive_writes_the_key_only_when_asked(tmp_path):
    r = init(tmp_path, answers=f"openai\ngpt-4.1\nhttp://127.0.0.1:8080/v1\n{KEY}\nn\n")
    assert r.returncode == 1  # no key anywhere: config check says so, and how to fix it
    text = config_of(tmp_path).read_text()
    assert KEY not in text + r.stdout + r.stderr
    assert tomllib.loads(text)["agent"] == {"provider": "openai", "model": "gpt-4.1",
                                            "base_url": "http://127.0.0.1:8080/v1"}
    assert 'needs an API key: set $OPENAI_API_KEY' in r.stderr and "export OPENAI_API_KEY=" in r.stderr
    assert "Traceback" not in r.stderr

    r = init(tmp_path, "--force", answers=f"anthropic\n\n\n{KEY}\ny\n")
    assert r.returncode == 0, r.stderr
    text = config_of(tmp_path).read_text()
    assert tomllib.loads(text)["agent"] == {"provider": "anthropic", "model": "claude-sonnet-4-5", "api_key": KEY}
    assert KEY not in r.stdout + r.stderr
    assert stat.S_IMODE(config_of(tmp_path).stat().st_mode) == 0o600


def test_init_never_overwrites_without_being_told(tmp_path):
    path = config_of(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("# mine\n")
    r = init(tmp_path, "--yes")
    assert r.returncode == 1 and path.read_text() == "# mine\n"
    assert r.stderr.strip() == f"exoclaw: {path} exists: pass --force to overwrite it (or --config for another file)"
    other = tmp_path / "elsewhere" / "c.toml"
    r = init(tmp_path, "--yes", "--config", str(other))
    assert r.returncode == 0, r.stderr
    assert f"next: exoclaw serve --config {other}" in r.stderr
    assert json.dumps("echo") in other.read_text()


def test_a_built_package_carries_the_bundled_tools_where_init_looks(tmp_path):
    """What a wheel gets (setup.py's build_py): the everyday tools compiled into
    ``exoclaw_core/wasm``, which ``exoclaw init`` finds without a checkout."""
    import sys

    repo = Path(__file__).resolve().parents[3]
    lib = tmp_path / "lib"
    built = subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(lib)],
                           cwd=repo, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    shipped = sorted(p.name for p in (lib / "exoclaw_core" / "wasm").iterdir())
    assert shipped == ["echo.wasm", "kv.wasm"]  # the tools only: no stamps, no test modules
    found = subprocess.run(
        [sys.executable, "-c", "from exoclaw_core.cli.init_cmd import wasm_dir; print(wasm_dir())"],
        cwd=tmp_path, env={**clean_env(tmp_path), "PYTHONPATH": str(lib)}, capture_output=True, text=True, timeout=60,
    )
    assert found.stdout.strip() == f"({(lib / 'exoclaw_core' / 'wasm')!r}, False)", found.stderr
