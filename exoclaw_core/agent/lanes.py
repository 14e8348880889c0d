"""Session lanes: the turns of one session run strictly one after another (FIFO).

Different sessions run concurrently. A lane exists only while a turn holds
or waits for it, so idle sessions cost no memory.

A store shared by several gateways (``Store.lanes()``, e.g. PostgreSQL's)
adds a ``shared`` lane: once a turn is at the head of this process's lane it
queues there, behind the session's turns on the other gateways. Only one
turn per session and process waits in the shared lane, in local order.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator


class _Lane:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        # asyncio.Lock wakes its waiters in FIFO order and a newcomer never
        # overtakes a waiter (CPython >= 3.11), which is the order we need.
        self.lock = asyncio.Lock()
        self.users = 0


class Lanes:
    def __init__(self, shared: Any = None) -> None:
        """``shared``: an object whose ``hold(key)`` (an async context manager) serialises the session
        across processes; ``None``: this process is the only one."""
        self._lanes: dict[str, _Lane] = {}
        self.shared = shared

    def __len__(self) -> int:
        return len(self._lanes)

    def waiting(self, key: str) -> int:
        lane = self._lanes.get(key)
        return lane.users if lane else 0

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Wait for the session's earlier turns, then run the body alone in the lane.

        The place in the queue is taken when ``hold`` is entered, before the
        first ``await``.
        """
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane()
        lane.users += 1
        try:
            async with lane.lock:
                if self.shared is None:
                    yield
                else:
                    async with self.shared.hold(key):
                        yield
        finally:
            lane.users -= 1
            if lane.users == 0:
                self._lanes.pop(key, None)
