"""Persistence: the SQLite implementation of ``exoclaw_hooks.Store`` (SPEC §10).

``open_store(data_dir)`` is the way in; it falls back to in-memory storage
(with one warning) when the database cannot be opened.
"""

from exoclaw_hooks import iso_utc, normalize_ts

from ._base import StoreClosedError
from .facts import match_expression
from .inbox import INBOX_STATES
from .sqlite import DB_FILENAME, SQLiteStore, open_store

__all__ = [
    "DB_FILENAME",
    "INBOX_STATES",
    "SQLiteStore",
    "StoreClosedError",
    "iso_utc",
    "match_expression",
    "normalize_ts",
    "open_store",
]
