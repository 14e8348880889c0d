"""Fixtures for the ``wasm`` builtin plugin's tests: the Zig plugins, built once per session."""

from __future__ import annotations

from tests.wasm_plugins.conftest import wasm_build  # noqa: F401 - re-exposed session fixture
