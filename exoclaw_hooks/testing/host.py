"""A stand-in for the gateway's ``host``, for testing a plugin without a gateway."""

from __future__ import annotations

import datetime as _dt
from typing import Any, Callable

from .._config import AgentConfig
from .._errors import ProviderError
from .._types import LLMReply, LLMRequest, Route, TextDelta, ToolUseEvent, StreamEnd


class FakeHost:
    """Just enough of :class:`exoclaw_hooks.Host` for a plugin's tests.

    * ``store``: what you give it (``None`` by default).
    * ``now()``: ``clock()`` (a fixed or advancing time you control).
    * ``http()``: an ``aiohttp.ClientSession`` made on first use (close it
      with :meth:`close`).
    * ``llm(...)``: answered by ``provider`` (a :class:`ScriptedProvider`, say);
      every call is kept in ``llm_calls`` as ``(kind, request)``.
    * ``secrets``: what the plugin asked to keep out of logs.
    """

    def __init__(
        self, *, store: Any = None, clock: Callable[[], _dt.datetime] | None = None, provider: Any = None,
    ) -> None:
        self.store = store
        self.app: Any = None
        self.hooks: Any = None
        self.provider = provider
        self.secrets: set[str] = set()
        self.llm_calls: list[tuple[str, LLMRequest]] = []
        self._clock = clock or (lambda: _dt.datetime.now(_dt.timezone.utc))
        self._http: Any = None

    def now(self) -> _dt.datetime:
        return self._clock()

    def register_secret(self, value: str | None) -> None:
        if value:
            self.secrets.add(value)

    def http(self) -> Any:
        if self._http is None:
            import aiohttp  # only when a test asks for it

            self._http = aiohttp.ClientSession()
        return self._http

    async def llm(
        self, request: LLMRequest, *, agent: AgentConfig, route: Route, kind: str = "plugin",
        provider: str | None = None, model: str | None = None,
    ) -> LLMReply:
        if self.provider is None:
            raise ProviderError("FakeHost has no provider: FakeHost(provider=ScriptedProvider())")
        self.llm_calls.append((kind, request))
        text, calls, end = [], [], None
        async for event in self.provider.stream(request):
            if isinstance(event, TextDelta):
                text.append(event.text)
            elif isinstance(event, ToolUseEvent):
                calls.append(event.call)
            elif isinstance(event, StreamEnd):
                end = event
        usage = end.usage if end is not None else None
        return LLMReply("".join(text), tuple(calls), usage if usage is not None else LLMReply("").usage,
                        end.stop_reason if end else None)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
