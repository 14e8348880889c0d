"""Fixtures for the Zig WASM plugins: build them once per test session."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "wasm_plugins" / "build.py"
BUILD_DIR = REPO / "wasm_plugins" / "build"
PLUGINS = ("echo", "kv", "fetch", "mock", "telegram")


@pytest.fixture(scope="session")
def wasm_build() -> dict[str, Path]:
    """Run ``wasm_plugins/build.py`` once; ``{name: path of NAME.wasm}``."""
    proc = subprocess.run(
        [sys.executable, str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=900
    )
    if proc.returncode != 0:
        pytest.fail(f"build.py failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    paths = {name: BUILD_DIR / f"{name}.wasm" for name in PLUGINS}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    assert not missing, f"build.py did not produce {missing}\n{proc.stdout}"
    return paths


@pytest.fixture(scope="session")
def wasm_bytes(wasm_build: dict[str, Path]) -> dict[str, bytes]:
    """The built modules' bytes, by plugin name."""
    return {name: path.read_bytes() for name, path in wasm_build.items()}
