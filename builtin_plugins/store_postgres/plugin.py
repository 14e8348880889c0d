"""The plugin: ``postgresql://`` and ``postgres://`` store URLs open a :class:`PostgresStore`."""

from __future__ import annotations

from typing import Any, Callable

from exoclaw_hooks import hookimpl


def open_postgres(*args: Any, **kwargs: Any) -> Any:
    """Open the store; psycopg and the store's modules are imported only when a URL asks for them."""
    from .store import open_postgres as open_store

    return open_store(*args, **kwargs)


class PostgresStorePlugin:
    @hookimpl
    def register_stores(self, register: Callable[..., Any]) -> None:
        register("postgresql", open_postgres)
        register("postgres", open_postgres)
