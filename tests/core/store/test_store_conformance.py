"""The SQLite store runs the conformance suite every ``exoclaw_hooks.Store`` runs (file and in memory)."""

from __future__ import annotations

import pytest

from exoclaw_core.store import SQLiteStore
from exoclaw_hooks.testing.store_conformance import StoreConformance


class TestSQLiteStore(StoreConformance):
    @pytest.fixture
    def open_store(self, tmp_path):
        opened = []

        def open_() -> SQLiteStore:
            opened.append(SQLiteStore(tmp_path / "exoclaw.db"))
            return opened[-1]

        yield open_
        for store in opened:
            store.close()


class TestSQLiteMemoryStore(StoreConformance):
    @pytest.fixture
    def open_store(self):
        opened = []

        def open_() -> SQLiteStore:
            opened.append(SQLiteStore(None))
            return opened[-1]

        yield open_
        for store in opened:
            store.close()
