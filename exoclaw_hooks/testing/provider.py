"""A small kit for plugin authors' tests: a scriptable provider.

::

    from exoclaw_hooks.testing import ScriptedProvider, Script

    provider = ScriptedProvider()
    provider.enqueue(Script(text=["Hel", "lo"]))
    provider.enqueue(Script(tool_calls=[ToolCall("t1", "echo", {"text": "hi"})]))

    class P:
        @hookimpl
        def register_providers(self, register):
            register("scripted", provider.factory)

Every request the provider received is kept in ``provider.history``. With
an empty queue it answers ``ok``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import AsyncIterator, Sequence

from .._config import ProviderSettings
from .._errors import ProviderError
from .._types import (
    LLMRequest,
    StreamEnd,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolUseEvent,
    Usage,
)


@dataclass
class Script:
    """One scripted answer: text chunks, then tool calls, then the end (or an error)."""

    text: Sequence[str] = ()
    tool_calls: Sequence[ToolCall] = ()
    usage: Usage = field(default_factory=lambda: Usage(10, 5))
    #: seconds to wait before each chunk
    delay_s: float = 0.0
    #: raise this after the text (or before it, with ``error_first``)
    error: ProviderError | None = None
    error_first: bool = True
    #: wait on this event before streaming (tests that need a turn to hang)
    gate: asyncio.Event | None = None


class ScriptedProvider:
    def __init__(self) -> None:
        self.queue: deque[Script] = deque()
        self.history: list[LLMRequest] = []
        self.settings: list[ProviderSettings] = []

    def enqueue(self, *scripts: Script) -> None:
        self.queue.extend(scripts)

    def factory(self, settings: ProviderSettings) -> "ScriptedProvider":
        self.settings.append(settings)
        return self

    async def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        self.history.append(request)
        script = self.queue.popleft() if self.queue else Script(text=["ok"])
        if script.gate is not None:
            await script.gate.wait()
        if script.error is not None and script.error_first:
            raise script.error
        for chunk in script.text:
            if script.delay_s:
                await asyncio.sleep(script.delay_s)
            yield TextDelta(chunk)
        if script.error is not None:
            script.error.output_started = bool(script.text)
            raise script.error
        for call in script.tool_calls:
            yield ToolUseEvent(call)
        yield StreamEnd("tool_use" if script.tool_calls else "end_turn", script.usage)
