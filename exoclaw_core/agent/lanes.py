"""Session lanes: the turns of one session run strictly one after another (FIFO).

Different sessions run concurrently. A lane exists only while a turn holds
or waits for it, so idle sessions cost no memory.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import AsyncIterator


class _Lane:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        # asyncio.Lock wakes its waiters in FIFO order and a newcomer never
        # overtakes a waiter (CPython >= 3.11), which is the order we need.
        self.lock = asyncio.Lock()
        self.users = 0


class Lanes:
    def __init__(self) -> None:
        self._lanes: dict[str, _Lane] = {}

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
                yield
        finally:
            lane.users -= 1
            if lane.users == 0:
                self._lanes.pop(key, None)
