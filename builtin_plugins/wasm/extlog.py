"""The reason behind a trap, read from Extism's own log.

``extism.Error`` for a trap only says "error while executing at wasm
backtrace"; the cause ("wasm `unreachable` instruction executed", "HTTP
request to … is not allowed") is only in Extism's log, one record per
failure, ending with ``plugin="<instance id>"``. We ask Extism for a
buffered custom log at level ``error`` and, after a call that failed with a
backtrace, drain it and pick the record of that instance.

Facts about extism 1.1.1 that shape this: the log sink is process-wide and
may be set only once (a second ``set_log_custom`` silences both), so it is
set at most once per process, lazily; the buffer grows until drained, so
every call drains it (about 0.2 µs when empty). If anything here fails the
bridge just gives the shorter messages.
"""

from __future__ import annotations

import collections
import re
import threading
from typing import Any

import extism

_PLUGIN_ID = re.compile(r'plugin="([0-9a-fA-F-]{36})"\s*$')
_MAX_KEPT = 64
_MAX_CAUSE = 300


def _cause(record: str) -> str | None:
    """The ``Caused by:`` text of a record (first paragraph), on one line."""
    _, sep, rest = record.partition("Caused by:")
    if not sep:
        return None
    text = rest.split("\n\n", 1)[0].split("Stack backtrace:", 1)[0]
    text = " ".join(text.split())
    return text[:_MAX_CAUSE] or None


class ExtismLog:
    """Process-wide capture of Extism's error log, keyed by plugin instance id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logger: Any = None
        self._tried = False
        self._causes: collections.OrderedDict[str, str] = collections.OrderedDict()

    def enable(self) -> bool:
        """Install the sink once per process; ``False`` if it could not be."""
        with self._lock:
            if not self._tried:
                self._tried = True
                try:
                    self._logger = extism.set_log_custom(self._on_record, "error")
                except Exception:  # noqa: BLE001 - degrade to messages without causes
                    self._logger = None
            return self._logger is not None

    def _on_record(self, record: str) -> None:
        # called from inside drain(), with self._lock held
        try:
            m = _PLUGIN_ID.search(record)
            cause = _cause(record[: m.start()] if m else record)
            if m is None or cause is None:
                return
            self._causes[m.group(1).lower()] = cause
            while len(self._causes) > _MAX_KEPT:
                self._causes.popitem(last=False)
        except Exception:  # noqa: BLE001
            pass

    def drain(self) -> None:
        """Empty Extism's buffer (keeping causes for later lookups)."""
        if self._logger is None:
            return
        with self._lock:
            try:
                self._logger.drain()
            except Exception:  # noqa: BLE001
                pass

    def cause_for(self, instance_id: str) -> str | None:
        """The cause Extism logged for instance ``instance_id``'s failed call, if any."""
        if self._logger is None:
            return None
        self.drain()
        with self._lock:
            return self._causes.pop(instance_id.lower(), None)


#: the one capture of this process
EXTISM_LOG = ExtismLog()
