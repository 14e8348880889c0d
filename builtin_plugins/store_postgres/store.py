"""``PostgresStore``: every method of ``exoclaw_hooks.Store`` on PostgreSQL (psycopg 3, pooled)."""

from __future__ import annotations

from typing import Any

from .budgets import BudgetsMixin
from .connection import Clock
from .facts import FactsMixin
from .records import InboxMixin, KVMixin, UsageMixin
from .sessions import SessionsMixin


class PostgresStore(SessionsMixin, FactsMixin, UsageMixin, KVMixin, InboxMixin, BudgetsMixin):
    """``PostgresStore(url, *, clock=None, max_connections=20)``; :meth:`open` connects and migrates (blocking)."""


def open_postgres(url: str, *, data_dir: str = "", clock: Clock | None = None, **options: Any) -> PostgresStore:
    """The ``register_stores`` factory: connect, migrate, return the open store.

    Raises ``StoreUnavailable`` (naming the URL without its password) when
    the database cannot be reached. ``data_dir`` is not used: everything is
    in the database.
    """
    return PostgresStore(url, clock=clock, **options).open()
