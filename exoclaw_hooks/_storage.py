"""Persistence, as plugins see it (a protocol the core implements)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence

if TYPE_CHECKING:
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
class StoredMessage:
    """A message as stored, for recall: who said it, when, in which session and turn."""

    id: int
    session_key: str
    turn_seq: int
    role: str
    speaker: str
    content: str
    created_at: str


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
    #: the provider reported no usage: the counts are the gateway's estimate and reservation
    estimated: bool = False


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


class Store(Protocol):
    """Persistence, as the core hands it to plugins.

    The ``async`` methods run the database work off the event loop. The
    ``kv_*`` methods are blocking on purpose: they back WASM host functions,
    which run in worker threads.
    """

    # sessions and turns
    async def load_turns(self, session_key: str, limit: int) -> list[Turn]: ...
    async def append_turn(
        self, session_key: str, agent_id: str, messages: Sequence[Message], tokens: int, *,
        speaker: str | None = None, context: Mapping[str, int] | None = None, replaces: int | None = None,
    ) -> Turn: ...  # one transaction; speaker: the user's name as the channel reported it; replaces: the seq
    # of the session's turn this one replaces (a regenerated answer), removed in the same transaction
    async def turn_contexts(self, session_key: str | None = None, limit: int = 100) -> list[dict[str, Any]]: ...

    # recall (everything said, indexed)
    async def search_messages(
        self, person_key: str, terms: Sequence[str], *, limit: int = 20,
        skip_session: str | None = None, skip_last_turns: int = 0,
    ) -> list[tuple[StoredMessage, float]]: ...  # best first; score: higher is better
    async def messages_near(
        self, message_ids: Sequence[int], before: int = 1, after: int = 1
    ) -> dict[int, list[StoredMessage]]: ...  # each id: itself and its neighbours in its session, in order
    async def list_sessions(self, agent_id: str | None = None, limit: int | None = None) -> list[SessionInfo]: ...
    async def history(self, session_key: str, limit: int | None = None) -> list[dict[str, Any]]: ...
    async def count_sessions(self) -> int: ...

    # metering
    async def record_usage(self, record: UsageRecord) -> None: ...
    async def sum_tokens(
        self, since: str, *, session_key: str | None = None, agent_id: str | None = None
    ) -> int: ...
    async def sum_usage(
        self, since: str, *, session_key: str | None = None, agent_id: str | None = None, person: str | None = None
    ) -> tuple[int, float]: ...  # (input + output tokens, USD) since then; person: "channel:account" as in session keys
    async def usage_report(self, by: str, session_key: str | None = None) -> list[dict[str, Any]]: ...

    # semantic memory
    async def add_fact(self, person_key: str, fact: Fact) -> Fact: ...
    async def search_facts(
        self, person_key: str | None, match: str, limit: int = 20, include_superseded: bool = False
    ) -> list[tuple[Fact, float]]: ...  # person_key None: everyone's facts (an owner's search)
    async def list_facts(self, person_key: str, include_superseded: bool = False) -> list[Fact]: ...
    async def retire_fact(
        self, person_key: str, fact_id: int, superseded_by: int | None = None
    ) -> Fact | None: ...  # superseded now, kept; None if the person has no such active fact

    # plugin key-value namespaces (blocking, thread-safe)
    def kv_get(self, namespace: str, key: str) -> str | None: ...
    def kv_set(self, namespace: str, key: str, value: str) -> None: ...
    def kv_delete(self, namespace: str, key: str) -> None: ...
