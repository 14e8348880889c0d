"""Fixtures for the Zig WASM plugins: build them once per test session.

``wasm_build`` builds the shipped plugins (``wasm_plugins/``) and the
test-only modules whose sources live with the tests (``tests/wasm_modules/``,
e.g. ``testtools``: tools that misbehave on purpose) with the same build
script, and returns every module's path by name.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "wasm_plugins" / "build.py"
BUILD_DIR = REPO / "wasm_plugins" / "build"
PLUGINS = ("echo", "kv", "fetch", "mock", "telegram")
TEST_MODULES_DIR = REPO / "tests" / "wasm_modules"
TEST_BUILD_DIR = TEST_MODULES_DIR / "build"
TEST_MODULES = ("testtools",)


def _build(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), *args], capture_output=True, text=True, timeout=900
    )
    if proc.returncode != 0:
        pytest.fail(f"build.py {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


@pytest.fixture(scope="session")
def wasm_build() -> dict[str, Path]:
    """Run ``wasm_plugins/build.py`` once (shipped plugins, then test modules); ``{name: path}``."""
    out = _build()
    out += _build("--plugins-dir", str(TEST_MODULES_DIR), "--out-dir", str(TEST_BUILD_DIR))
    paths = {name: BUILD_DIR / f"{name}.wasm" for name in PLUGINS}
    paths.update({name: TEST_BUILD_DIR / f"{name}.wasm" for name in TEST_MODULES})
    missing = [str(p) for p in paths.values() if not p.is_file()]
    assert not missing, f"build.py did not produce {missing}\n{out}"
    return paths


@pytest.fixture(scope="session")
def wasm_bytes(wasm_build: dict[str, Path]) -> dict[str, bytes]:
    """The built modules' bytes, by plugin name."""
    return {name: path.read_bytes() for name, path in wasm_build.items()}


def kv_stored_key(person: str, key: str) -> str:
    """Where the shipped ``kv`` plugin keeps ``key`` for ``person``: that person's own space."""
    return f"p:{hashlib.sha256(person.encode()).hexdigest()[:32]}:{key}"
