"""The plugin: ``postgresql://`` and ``postgres://`` store URLs open a :class:`PostgresStore`."""

from __future__ import annotations

from typing import Any, Callable

from exoclaw_hooks import hookimpl

from .store import open_postgres


class PostgresStorePlugin:
    @hookimpl
    def register_stores(self, register: Callable[..., Any]) -> None:
        register("postgresql", open_postgres)
        register("postgres", open_postgres)
