"""One WASM call's state, shared by the bridge, the host functions and whoever may stop the call.

A :class:`CallContext` is made for every call, handed to Extism as the
call's ``host_context`` (so the ``kv_*`` and HTTP host functions know the
plugin's store namespace, its granted hosts and the call's deadline), and
kept by the ``wasm`` plugin while the call runs, so that a cancelled turn or
a stopping gateway can stop it (:meth:`CallContext.stop`).

The first failure a host function meets (a denied host, a failed request)
is recorded here and the instance is cancelled: the call then ends with
that failure, whatever the guest does next, as Extism's own ``http_request``
made the call fail.

When a cancel is safe: Extism registers a call's timeout with its timer
thread a moment *before* it arms the call's epoch deadline; a cancel that
lands in between consumes the registration and the deadline is armed after
it — the call then runs for ever, its ``timeout_ms`` lost with it. Once a
host function runs, the call is past that point. So :meth:`stop` cancels
only then (an HTTP request in flight is cut at once, the guest stopped at
its next host call), and a call that never calls the host — a pure
computation — runs on to its ``timeout_ms``, which always holds.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any, Iterable

log = logging.getLogger("exoclaw.wasm")

#: problems logged per call at most (a plugin looping over bad calls must not flood the log)
MAX_PROBLEMS_LOGGED = 3


class CallFailure(Exception):
    """A call failed; ``kind`` says how (see :mod:`.calls` for the list)."""

    def __init__(self, kind: str, detail: str = "", size: int = 0):
        self.kind, self.detail, self.size = kind, detail, size
        super().__init__(f"{kind}: {detail}" if detail else kind)


class CallContext:
    """What one call may do, what its host functions found, and how to stop it."""

    def __init__(
        self,
        plugin: str,
        *,
        store: Any = None,
        namespace: str | None = None,
        hosts: Iterable[str] = (),
        timeout_ms: int = 1000,
        max_response_bytes: int = 50 * 1024 * 1024,
    ) -> None:
        self.plugin = plugin
        self.store = store
        self.namespace = namespace
        self.hosts = tuple(hosts)
        self.timeout_ms = timeout_ms
        self.max_response_bytes = max_response_bytes
        self.started = time.monotonic()
        #: the last HTTP response (``http_status_code`` / ``http_headers``)
        self.http_status = 0
        self.http_headers: dict[str, str] = {}
        self.problems = 0
        self.failure: CallFailure | None = None
        self._lock = threading.Lock()
        self._handle: Any = None
        #: a host function ran during this call: the guest is past its start, a cancel is safe
        self._in_guest = False
        self._sockets: set[socket.socket] = set()

    @property
    def deadline(self) -> float:
        """``time.monotonic()`` at which the call's ``timeout_ms`` is spent."""
        return self.started + self.timeout_ms / 1000

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    # ------------------------------------------------------------ stopping

    def begin(self) -> None:
        """The guest starts now: ``timeout_ms`` counts from here (not from a wait for a free slot)."""
        self.started = time.monotonic()

    def attach(self, handle: Any) -> None:
        """Remember the instance's cancel handle (before its call starts)."""
        with self._lock:
            self._handle, self._in_guest = handle, False

    def detach(self) -> None:
        """Forget the cancel handle (its instance is about to be freed)."""
        with self._lock:
            self._handle, self._in_guest = None, False

    def in_guest(self) -> bool:
        """Every host function says so first: the call is running; ``False`` if it was stopped (refuse the work)."""
        with self._lock:
            self._in_guest = True
            if self.failure is not None:
                self._cancel()
                return False
            return True

    def stop(self, failure: CallFailure) -> None:
        """End the call with ``failure`` (the first recorded wins): cut its sockets, cancel it if that is safe."""
        with self._lock:
            if self.failure is None:
                self.failure = failure
            sockets = list(self._sockets)
            if self._in_guest:
                self._cancel()
        for sock in sockets:
            _cut(sock)

    def _cancel(self) -> None:
        # under the lock: the instance cannot be freed meanwhile
        if self._handle is not None:
            try:
                self._handle.cancel()
            except Exception:  # noqa: BLE001
                pass

    def track(self, sock: socket.socket) -> None:
        """An open HTTP connection of this call: :meth:`stop` cuts it (a blocked read ends)."""
        with self._lock:
            self._sockets.add(sock)
            stopped = self.failure is not None
        if stopped:
            _cut(sock)

    def untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)

    # ------------------------------------------------------------ reporting

    def problem(self, fn: str, what: str) -> None:
        """A refused ``kv_*`` call (logged, a few per call at most)."""
        self.problems += 1
        if self.problems <= MAX_PROBLEMS_LOGGED:
            log.warning("event=wasm_kv_refused plugin=%s namespace=%s fn=%s reason=%s",
                        self.plugin, self.namespace, fn, what)


def _cut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
