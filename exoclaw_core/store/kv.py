"""Plugin key-value namespaces: blocking and thread-safe (they back WASM host functions)."""

from __future__ import annotations

import sqlite3

from ._base import StoreBase


class KVMixin(StoreBase):
    """``kv_*`` run in the caller's thread (a WASM worker), under the store's lock.

    Each write is one autocommitted statement, committed when the call returns.
    """

    def kv_get(self, namespace: str, key: str) -> str | None:
        """The value stored under ``namespace``/``key``, or ``None``."""
        return self._call(_kv_get, namespace, key)

    def kv_set(self, namespace: str, key: str, value: str) -> None:
        """Store ``value`` (a string) under ``namespace``/``key``, replacing any previous one."""
        if not isinstance(value, str):
            raise TypeError(f"kv values are strings, not {type(value).__name__}")
        self._call(_kv_set, namespace, key, value, self._now())

    def kv_delete(self, namespace: str, key: str) -> None:
        """Forget ``namespace``/``key`` (nothing happens if it is not there)."""
        self._call(_kv_delete, namespace, key)


def _kv_get(conn: sqlite3.Connection, namespace: str, key: str) -> str | None:
    row = conn.execute("SELECT value FROM kv WHERE namespace = ? AND key = ?", (namespace, key)).fetchone()
    return None if row is None else row[0]


def _kv_set(conn: sqlite3.Connection, namespace: str, key: str, value: str, now: str) -> None:
    conn.execute(
        """INSERT INTO kv(namespace, key, value, updated_at) VALUES (?, ?, ?, ?)
           ON CONFLICT(namespace, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at""",
        (namespace, key, value, now),
    )


def _kv_delete(conn: sqlite3.Connection, namespace: str, key: str) -> None:
    conn.execute("DELETE FROM kv WHERE namespace = ? AND key = ?", (namespace, key))
