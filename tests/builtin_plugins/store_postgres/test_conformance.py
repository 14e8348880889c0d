"""The PostgreSQL store runs the same conformance suite as the SQLite one, on a database of its own per test."""

from __future__ import annotations

import pytest

from builtin_plugins.store_postgres.store import open_postgres
from exoclaw_hooks.testing.store_conformance import StoreConformance
from tests.harness import postgres_database


class TestPostgresStore(StoreConformance):
    @pytest.fixture
    async def open_store(self):
        opened = []
        with postgres_database() as url:

            def open_():
                opened.append(open_postgres(url))
                return opened[-1]

            yield open_
            for store in opened:
                await store.aclose()
