"""One compiled engine per call running at the same time.

Extism stops a call (its ``timeout_ms``, or a cancel) by bumping the epoch of
the wasmtime engine its ``CompiledPlugin`` owns — and every instance made
from that ``CompiledPlugin`` shares the engine: when one call timed out or
was cancelled, every other call of the plugin running at that moment trapped
too (one session's endless loop ended another session's call of the same
plugin as a "timeout"). So a running call takes an engine no other running
call uses: :class:`Engines` keeps the free ones, compiles another when all
are busy (about 1 ms, a few hundred KiB) and keeps it for later calls. There
are never more than calls of the plugin ran at once (at most its
``max_concurrency`` under the ``wasm`` plugin's slots).
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Callable, Iterator


class Engines:
    """The free compiled modules of one plugin."""

    def __init__(self, first: Any, make: Callable[[], Any]) -> None:
        self._free = [first]
        self._make = make
        self._lock = threading.Lock()
        #: engines compiled so far (the first one included)
        self.count = 1

    @contextlib.contextmanager
    def engine(self) -> Iterator[Any]:
        """A compiled module no other running call uses, for the length of one call (blocking)."""
        with self._lock:
            compiled = self._free.pop() if self._free else None
        if compiled is None:
            compiled = self._make()
            with self._lock:
                self.count += 1
        try:
            yield compiled
        finally:
            with self._lock:
                self._free.append(compiled)
