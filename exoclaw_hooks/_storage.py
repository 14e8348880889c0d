"""Persistence and the running gateway, as plugins see them (protocols the core implements)."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, Sequence

if TYPE_CHECKING:
    from ._config import Settings
    from ._types import Fact, IncomingMessage, Message, Turn

# --------------------------------------------------------------------------
# Storage (the core implements it; SQLite by default)
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionInfo:
    key: str
    agent_id: str
    created_at: str
    updated_at: str
    message_count: int
    tokens: int


@dataclass(frozen=True, slots=True)
class UsageRecord:
    timestamp: str  # ISO 8601 UTC
    session_key: str
    agent_id: str
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    priced: bool = True


@dataclass(frozen=True, slots=True)
class InboxItem:
    id: int
    channel: str
    message_id: str
    message: IncomingMessage
    state: str
    attempts: int = 0
    received_at: str = ""
    #: the reply, once the turn produced it (a restart then re-sends it, never re-runs the turn)
    reply: str | None = None


#: kv namespaces the core and the builtin plugins keep for themselves: a WASM
#: plugin is never granted one (``store:NAME``), so it can neither read nor
#: forge their data. Every namespace a builtin uses is listed here, and the
#: builtins' names are kept free for them.
RESERVED_NAMESPACES = frozenset({
    "metering",  # budgets: the start of each session's period
    "core", "exoclaw", "gateway", "store", "router", "memory", "memory-soul", "memory-semantic",
    "memory-episodic", "wasm", "mcp", "provider-anthropic", "provider-openai", "provider-echo",
})


class Store(Protocol):
    """Persistence, as the core hands it to plugins.

    The ``async`` methods run the database work off the event loop. The
    ``kv_*`` methods are blocking on purpose: they back WASM host functions,
    which run in worker threads.
    """

    # sessions and turns
    async def load_turns(self, session_key: str, limit: int) -> list[Turn]: ...
    async def append_turn(
        self, session_key: str, agent_id: str, messages: Sequence[Message], tokens: int
    ) -> Turn: ...
    async def list_sessions(self, agent_id: str | None = None, limit: int | None = None) -> list[SessionInfo]: ...
    async def history(self, session_key: str, limit: int | None = None) -> list[dict[str, Any]]: ...
    async def count_sessions(self) -> int: ...

    # metering
    async def record_usage(self, record: UsageRecord) -> None: ...
    async def sum_tokens(
        self, since: str, *, session_key: str | None = None, agent_id: str | None = None
    ) -> int: ...
    async def usage_report(self, by: str, session_key: str | None = None) -> list[dict[str, Any]]: ...

    # semantic memory
    async def add_fact(self, person_key: str, fact: Fact) -> Fact: ...
    async def search_facts(
        self, person_key: str | None, match: str, limit: int = 20, include_superseded: bool = False
    ) -> list[tuple[Fact, float]]: ...  # person_key None: everyone's facts (an owner's search)
    async def list_facts(self, person_key: str, include_superseded: bool = False) -> list[Fact]: ...

    # plugin key-value namespaces (blocking, thread-safe)
    def kv_get(self, namespace: str, key: str) -> str | None: ...
    def kv_set(self, namespace: str, key: str, value: str) -> None: ...
    def kv_delete(self, namespace: str, key: str) -> None: ...


# --------------------------------------------------------------------------
# What the core gives plugins at start-up
# --------------------------------------------------------------------------


class Host(Protocol):
    """The running gateway, as plugins see it (``gateway_startup``, ``register_providers``).

    * ``settings``: the validated configuration.
    * ``store``: persistence.
    * ``now()``: the current UTC time (injectable in tests).
    * ``http()``: the gateway's one shared ``aiohttp.ClientSession`` (call it
      inside the event loop).
    * ``app``: the ``aiohttp.web.Application`` during ``gateway_startup``
      (add routes there), else ``None``.
    * ``hooks``: call another hook (``await host.hooks.first("extract_facts", ...)``).
    """

    settings: Settings
    store: Store
    app: Any

    def now(self) -> _dt.datetime: ...
    def http(self) -> Any: ...

    @property
    def hooks(self) -> "HookCaller": ...


class HookCaller(Protocol):
    async def first(self, name: str, **kwargs: Any) -> Any: ...
    async def all(self, name: str, **kwargs: Any) -> list[Any]: ...
