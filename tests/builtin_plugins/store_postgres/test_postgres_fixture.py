"""Without PostgreSQL a developer's run skips the PostgreSQL tests with the reason; CI's fails loudly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
NOBODY = "postgresql://postgres@127.0.0.1:1/postgres"  # nothing listens on port 1


def run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("EXOCLAW_")}
    environment.update(env, EXOCLAW_TEST_POSTGRES=NOBODY)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
         "tests/builtin_plugins/store_postgres/test_conformance.py", "-k", "kv_namespaces"],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120)


def test_unreachable_postgres_skips_with_the_reason(tmp_path):
    done = run(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 skipped" in done.stdout
    assert f"PostgreSQL is not reachable at {NOBODY}" in done.stdout
    assert "EXOCLAW_REQUIRE_POSTGRES=1" in done.stdout


def test_unreachable_postgres_fails_when_required(tmp_path):
    done = run(tmp_path, EXOCLAW_REQUIRE_POSTGRES="1")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 failed" in done.stdout or "1 error" in done.stdout
    assert f"PostgreSQL is not reachable at {NOBODY}" in done.stdout
