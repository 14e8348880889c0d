"""The SQLite store: every method of ``exoclaw_hooks.Store``, plus the webhook inbox.

Each area lives in its own mixin module (``sessions``, ``usage``, ``facts``,
``kv``, ``inbox``); the connection, the worker thread and the durability
rules are in ``_base``; the schema is in ``migrations``.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from ._base import Clock
from .budgets import BudgetsMixin
from .claims import ClaimsMixin
from .facts import FactsMixin
from .inbox import InboxMixin
from .kv import KVMixin
from .recall import RecallMixin
from .sessions import SessionsMixin
from .usage import UsageMixin

logger = logging.getLogger(__name__)

#: The database file's name inside the data directory.
DB_FILENAME = "exoclaw.db"


class SQLiteStore(
    SessionsMixin, RecallMixin, UsageMixin, FactsMixin, KVMixin, InboxMixin, ClaimsMixin, BudgetsMixin,
):
    """``SQLiteStore(path=None, *, clock=None)``: ``path`` ``None`` / ``":memory:"`` keeps nothing.

    Opening applies pending migrations; it raises ``sqlite3.Error`` or
    ``OSError`` when the file cannot be used (see :func:`open_store` for the
    forgiving way). Close with :meth:`close`.
    """


def open_store(
    data_dir: Path | str | None, *, log: logging.Logger = logger, clock: Clock | None = None
) -> SQLiteStore:
    """Open ``<data_dir>/exoclaw.db`` (creating the directory), never failing.

    When the database cannot be opened (permission denied, a directory in
    the way, a corrupt file …) ONE warning is logged and an in-memory store
    with the same behaviour is returned, so the gateway still starts
    (SPEC §10). ``data_dir`` ``None`` asks for in-memory storage outright.
    """
    if data_dir is None:
        return SQLiteStore(None, clock=clock)
    path = Path(data_dir).expanduser() / DB_FILENAME
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return SQLiteStore(path, clock=clock)
    except (sqlite3.Error, OSError) as exc:
        reason = str(exc) or type(exc).__name__
        if isinstance(exc, OSError) and exc.strerror:
            reason = exc.strerror
        log.warning("cannot open database %s: %s; using in-memory storage, nothing will be kept", path, reason)
        return SQLiteStore(None, clock=clock)
