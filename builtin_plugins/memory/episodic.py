"""Episodic memory: the last ``[memory] episodic_window`` turns of the session (SPEC §9).

The store hands back whole turns (the user's message, any tool calls and
their results, the reply), so the window never starts inside a tool
exchange; the core drops whole turns too when it trims to
``context_tokens``. Older turns reach the model only through the facts
learned from them.
"""

from __future__ import annotations

from typing import Any

from exoclaw_hooks import ContextPart, hookimpl

from .settings import MemorySettings

SOURCE = "memory-episodic"


class EpisodicPlugin(MemorySettings):
    """``memory-episodic``: contributes ``ContextPart(kind="turn")`` for the recent turns."""

    @hookimpl
    async def assemble_context(self, request: Any) -> list[ContextPart] | None:
        window = self.memory.episodic_window
        if window <= 0:
            return None
        turns = await request.store.load_turns(request.route.session_key, window)
        return [ContextPart(kind="turn", turn=t, source=SOURCE) for t in turns]
