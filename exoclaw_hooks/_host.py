"""The running gateway, as plugins see it (a protocol the core implements)."""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ._config import AgentConfig
    from ._storage import Store
    from ._types import LLMReply, LLMRequest, Route


class HookCaller(Protocol):
    """``host.hooks``: call another hook by name (``await host.hooks.first("extract_facts", ...)``)."""

    async def first(self, name: str, **kwargs: Any) -> Any: ...
    async def all(self, name: str, **kwargs: Any) -> list[Any]: ...


class Host(Protocol):
    """What a plugin gets as ``host`` (``gateway_startup``, ``register_providers``, ``status_info`` …).

    * ``store``: persistence (sessions, facts, usage, key-value namespaces).
    * ``now()``: the current UTC time (injectable in tests).
    * ``http()``: the gateway's one shared ``aiohttp.ClientSession`` (call it
      inside the event loop).
    * ``llm(request, ...)``: an LLM call made for the plugin, metered and
      refused by budgets exactly like the agent's own (``kind`` is recorded
      in the usage records: ``"memory"`` for memory extraction).
    * ``hooks``: call another hook.
    * ``register_secret(value)``: a value that must never appear in a log line.
    * ``app``: the ``aiohttp.web.Application`` during ``gateway_startup`` (add
      routes there), else ``None``.

    Logging: use ``logging.getLogger("exoclaw.<your plugin>")``; the gateway's
    handlers format, redact and route it. Configuration: declare your own
    tables with ``register_settings``.
    """

    store: "Store"
    app: Any

    def now(self) -> _dt.datetime: ...
    def http(self) -> Any: ...
    def register_secret(self, value: str | None) -> None: ...

    @property
    def hooks(self) -> HookCaller: ...

    async def llm(
        self,
        request: "LLMRequest",
        *,
        agent: "AgentConfig",
        route: "Route",
        kind: str = "plugin",
        provider: str | None = None,
        model: str | None = None,
    ) -> "LLMReply": ...
