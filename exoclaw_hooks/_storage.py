"""Persistence, as plugins see it (a protocol the core implements)."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence

if TYPE_CHECKING:
    from ._types import Fact, IncomingMessage, Message, Turn

# --------------------------------------------------------------------------
# Timestamps as every store keeps them (compared as text: one form for all)
# --------------------------------------------------------------------------

_UTC = _dt.timezone.utc


def iso_utc(moment: _dt.datetime) -> str:
    """``2026-11-25T11:38:47.123456Z``, the stores' canonical form; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_UTC)
    elif moment.utcoffset():
        moment = moment.astimezone(_UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond:06d}Z"


def normalize_ts(value: str | _dt.datetime | _dt.date) -> str:
    """Any ISO 8601 date or datetime (``Z``, an offset, naive = UTC) in the canonical form.

    Raises ``ValueError`` for text that is not ISO 8601.
    """
    if isinstance(value, _dt.datetime):
        return iso_utc(value)
    if isinstance(value, _dt.date):
        return iso_utc(_dt.datetime(value.year, value.month, value.day, tzinfo=_UTC))
    try:
        parsed = _dt.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"not an ISO 8601 timestamp: {value!r}") from None
    return iso_utc(parsed)


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


def safe_url(url: str) -> str:
    """``url`` without its password (in the authority or a ``password=`` parameter): fit for logs and status."""
    from urllib.parse import parse_qsl, urlencode, urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "<an unparsable url>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}@{host}" if user else host
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() == "password" for k, _ in pairs):
            query = urlencode([(k, v) for k, v in pairs if k.lower() != "password"])
    out = f"{parts.scheme}://{netloc}{parts.path}" if "://" in url else f"{parts.scheme}:{parts.path}"
    return out + (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")


def url_password(url: str) -> str | None:
    """The password a URL carries (to register as a secret: logs never show it), or ``None``."""
    from urllib.parse import parse_qsl, urlsplit

    try:
        parts = urlsplit(url)
        for k, v in parse_qsl(parts.query):
            if k.lower() == "password" and v:
                return v
        return parts.password
    except ValueError:
        return None


#: the states of a webhook inbox item (see ``Store.inbox_mark``)
INBOX_STATES = ("pending", "replied", "failed", "ignored")


class StoreUnavailable(RuntimeError):
    """The store's database cannot be reached (a lost connection, a server down).

    Its message is one sentence naming the database without its password;
    what was being written was not committed.
    """


class Store(Protocol):
    """Persistence, as the core hands it to plugins: everything the core and the builtins keep.

    The ``async`` methods run the database work off the event loop. The
    ``kv_*`` methods are blocking on purpose: they back WASM host functions,
    which run in worker threads.

    The core opens the store the config names (``[store] url``, SQLite in
    the data directory by default; a plugin adds another kind with the
    ``register_stores`` hook). Every implementation passes the conformance
    suite ``exoclaw_hooks.testing.store_conformance``: what is written here
    is behaviour that suite checks. Times are ISO 8601 UTC strings
    (``2026-11-25T11:38:47.123456Z``, always six fractional digits).
    """

    # sessions and turns
    async def load_turns(self, session_key: str, limit: int) -> list[Turn]: ...
    async def append_turn(
        self, session_key: str, agent_id: str, messages: Sequence[Message], tokens: int, *,
        speaker: str | None = None, context: Mapping[str, int] | None = None, replaces: int | None = None,
        answers: tuple[int, str] | None = None,
    ) -> Turn: ...  # one transaction; speaker: the user's name as the channel reported it; replaces: the seq
    # of the session's turn this one replaces (a regenerated answer), removed in the same transaction;
    # answers: (inbox id, reply) of the webhook message the turn answers, kept in the same transaction
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

    # the webhook inbox (SPEC §7): stored before the webhook is answered; core-only
    async def inbox_add(
        self, channel: str, message_id: str | None, message: IncomingMessage
    ) -> tuple[int, bool]: ...  # (id, is_new); the same channel + platform message_id again: (its id, False);
    # committed durably when it returns
    async def inbox_pending(self) -> list[InboxItem]: ...  # state 'pending', oldest first
    async def inbox_mark(
        self, id: int, state: str, *, reply_status: int | None = None, error: str | None = None  # noqa: A002
    ) -> bool: ...  # one of INBOX_STATES; 'replied' is final (a later mark: False); attempts counts a mark to
    # 'replied' or 'failed', or back to 'pending' with an error; ValueError for another state
    async def inbox_answer(self, id: int, reply: str) -> bool: ...  # noqa: A002 - keep a pending item's reply
    async def inbox_counts(self) -> dict[str, int]: ...  # every state of INBOX_STATES, 0 when none
    async def inbox_claim(
        self, owner: str, lease_s: float, *, ids: Sequence[int] | None = None, limit: int = 100,
    ) -> list[InboxItem]: ...  # pending items nobody holds (never claimed, or the claim's lease ran out), now
    # held by ``owner`` for ``lease_s`` seconds, oldest first; ``ids``: only those. Two owners never get the same
    # item while a lease runs: each delivery is handled by one gateway; a crashed one's items come back after it
    async def inbox_renew(self, owner: str, ids: Sequence[int], lease_s: float) -> int: ...  # extend owner's
    # leases on those pending items (the ones still its own); how many were extended

    # budget counters shared by every gateway on the store: reservations before a call, settled after it
    async def budget_reserve(
        self, owner: str, limits: Mapping[str, int], amount: int, *, hold_s: float,
        seed: Mapping[str, int] | None = None,
    ) -> tuple[int | None, dict[str, tuple[int, int]]]: ...
    # ONE atomic step over every counter named in ``limits`` (counter key -> limit): each counter is
    # (used, reserved), reserved = the amounts of the reservations on it not yet settled nor expired. When
    # used + reserved + amount <= limit for every key, a reservation of ``amount`` on all of them is made
    # (it expires after ``hold_s`` unless settled) and its id returned, else None (nothing changes). Also
    # returns each counter as it was before. A counter seen first starts at ``seed[key]`` (default 0): what
    # the usage records say was spent in its period. Keys are the caller's ("daily:2026-12-04", "session:K").
    async def budget_settle(self, reservation: int | None, keys: Sequence[str], tokens: int) -> None: ...
    # ONE atomic step: the reservation (if still there) is released and ``tokens`` added to the used count
    # of every key (also when the reservation expired: tokens spent are counted)
    async def budget_counters(self, keys: Sequence[str]) -> dict[str, tuple[int, int]]: ...  # (used, reserved);
    # only the keys that exist

    # operating it
    def describe(self) -> dict[str, Any]: ...  # {"kind": "sqlite" | "postgresql" | …, "url": without password,
    # "persistent": bool, "shared": bool}: what `exoclaw status` shows; "shared": several gateways may use the
    # store at once (a plugin then keeps counters in it, e.g. budget_reserve, not in its own memory)
    async def ping(self) -> None: ...  # raises StoreUnavailable when the database cannot be reached (/readyz)
    def close(self) -> None: ...  # blocking; idempotent
    async def aclose(self) -> None: ...  # the same from the event loop; idempotent
