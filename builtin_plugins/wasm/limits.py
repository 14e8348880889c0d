"""How many WASM calls run at once: per plugin, and per session within a plugin.

Before this, every call of every session went to one small thread pool (4
workers on 2 cores): 16 endless loops at ``timeout_ms = 1000`` held all
four workers and delayed every other session's tools by up to 4 s (issue
16). Now a call first takes a slot of its session (at most
``max_concurrency_per_session`` of that plugin's calls of one session run
at once) and then one of its plugin (``max_concurrency``, all sessions);
the calls beyond wait here, on the event loop, holding no thread. The
worker pool has as many threads as all plugins' slots together, so a call
that got its slots never waits for a thread: a hostile tool can occupy only
its own plugin's slots, and another plugin's call starts at once.

A slot is given back when the call's thread is done, not when its awaiting
coroutine is: a cancelled turn stops its call (:meth:`CallContext.stop`),
but a pure computation only ends at its ``timeout_ms``, and until then it
still holds its slot.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass
class _Session:
    slots: asyncio.Semaphore
    users: int = 0


@dataclass
class PluginSlots:
    """The slots of one plugin."""

    max_concurrency: int
    max_concurrency_per_session: int
    _plugin: asyncio.Semaphore | None = None
    _sessions: dict[str, _Session] = field(default_factory=dict)

    async def acquire(self, session: str | None) -> "Slot":
        """Wait for a slot of ``session`` (if any), then one of the plugin."""
        if self._plugin is None:
            self._plugin = asyncio.Semaphore(self.max_concurrency)
        entry = None
        if session is not None:
            entry = self._sessions.get(session)
            if entry is None:
                entry = self._sessions[session] = _Session(asyncio.Semaphore(self.max_concurrency_per_session))
            entry.users += 1
        try:
            if entry is not None:
                await entry.slots.acquire()
            try:
                await self._plugin.acquire()
            except BaseException:
                if entry is not None:
                    entry.slots.release()
                raise
        except BaseException:
            self._leave(session, entry)
            raise
        return Slot(self, session, entry)

    def _leave(self, session: str | None, entry: _Session | None) -> None:
        if entry is None or session is None:
            return
        entry.users -= 1
        if entry.users == 0 and self._sessions.get(session) is entry:
            del self._sessions[session]  # idle sessions cost nothing

    def waiting_sessions(self) -> int:
        """Sessions holding or waiting for a slot (for tests and reports)."""
        return len(self._sessions)


class Slot:
    """A call's permission to run; :meth:`release` exactly once, on the event loop."""

    __slots__ = ("_owner", "_session", "_entry", "_released")

    def __init__(self, owner: PluginSlots, session: str | None, entry: _Session | None) -> None:
        self._owner, self._session, self._entry = owner, session, entry
        self._released = False

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        assert self._owner._plugin is not None
        self._owner._plugin.release()
        if self._entry is not None:
            self._entry.slots.release()
        self._owner._leave(self._session, self._entry)
