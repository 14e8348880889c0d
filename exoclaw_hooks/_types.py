"""The data plugins exchange with the core.

Everything here is a small frozen dataclass (or a Protocol the core
implements), so a plugin can keep references without fearing that the core
mutates them later. Only the standard library is imported.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Literal, Mapping, Protocol, Sequence, runtime_checkable

# --------------------------------------------------------------------------
# Identity and routing
# --------------------------------------------------------------------------


def escape_key_part(part: str) -> str:
    """Escape one part of a session key: ``%`` → ``%25`` and ``:`` → ``%3A``.

    Used so that two different senders can never share a key (SPEC §4).
    """
    return part.replace("%", "%25").replace(":", "%3A")


def make_session_key(agent_id: str, channel: str, account: str, peer: str) -> str:
    """The session key ``{agent_id}:{channel}:{account}:{peer}``, each part escaped."""
    return ":".join(escape_key_part(p) for p in (agent_id, channel, account, peer))


def make_person_key(agent_id: str, channel: str, account: str) -> str:
    """Who a message is from, for one agent: facts belong to this key (SPEC §9)."""
    return ":".join(escape_key_part(p) for p in (agent_id, channel, account))


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A message from a client (``chat.send``) or a platform (a webhook)."""

    channel: str
    account: str
    content: str
    peer: str = "main"
    guild: str | None = None
    team: str | None = None
    #: the platform's own id for the message (webhooks), used to drop retries
    message_id: str | None = None
    #: opaque data a channel plugin needs to answer (chat id …)
    reply_to: Mapping[str, Any] | None = None
    #: extra system text for this turn only (the OpenAI face's ``system`` message)
    system_extra: str | None = None


@dataclass(frozen=True, slots=True)
class Route:
    """Where a message goes: the agent that answers and the session it joins."""

    agent_id: str
    session_key: str


# --------------------------------------------------------------------------
# Conversation content
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The model asks for a tool: ``id`` is the provider's tool-use id."""

    id: str
    name: str
    input: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a tool answered; ``is_error`` results are still shown to the model."""

    tool_use_id: str
    content: str
    is_error: bool = False


Role = Literal["user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class Message:
    """One message of a conversation.

    * ``user``: ``content`` is what the person said.
    * ``assistant``: ``content`` is the text, ``tool_calls`` what it asked for.
    * ``tool``: ``tool_results`` answers the previous assistant's calls.
    """

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_results: tuple[ToolResult, ...] = ()
    created_at: str | None = None


@dataclass(frozen=True, slots=True)
class Turn:
    """A whole exchange: the user's message, any tool calls and results, the reply.

    Windows of history are made of whole turns, so a tool result is never
    separated from its call.
    """

    messages: tuple[Message, ...]
    seq: int = 0
    created_at: str | None = None
    tokens: int = 0


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool offered to the model (``input_schema`` is JSON Schema)."""

    name: str
    description: str
    input_schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "object"})


# --------------------------------------------------------------------------
# Talking to an LLM
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts, always taken from the provider's own usage fields."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
        )

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class LLMRequest:
    """One call to a provider: what a provider plugin turns into its API's body."""

    model: str
    system: str
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    max_tokens: int = 4096


# Stream events a provider yields, in order. A provider's stream ends after
# ``StreamEnd``; failures are raised as ``ProviderError``.


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolUseEvent:
    call: ToolCall


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """The last event: why the model stopped, and the call's usage."""

    stop_reason: str | None
    usage: Usage


StreamEvent = TextDelta | ToolUseEvent | StreamEnd


@runtime_checkable
class Provider(Protocol):
    """A streaming LLM client, made by a factory given to ``register_providers``.

    ``stream`` is an async generator: yield ``TextDelta`` as soon as text
    arrives, ``ToolUseEvent`` once a tool call's input is complete, and finally
    one ``StreamEnd``. Raise ``ProviderError`` on failure (set
    ``output_started`` when any event was already yielded, so the core does not
    retry or fall back).
    """

    def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]: ...


# --------------------------------------------------------------------------
# Configuration, as handed to plugins (the core validates and builds it)
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    """What a provider factory needs to build a client for one agent."""

    provider: str
    model: str
    max_tokens: int = 4096
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 120.0
    #: provider-specific knobs (echo: ``chunk_delay_s``)
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AgentConfig:
    id: str
    provider: str
    model: str
    max_tokens: int = 4096
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    system_prompt: str = ""
    soul_path: str | None = None
    #: tool names this agent may use; ``None`` = every loaded tool
    tools: tuple[str, ...] | None = None
    max_tool_iterations: int = 10
    timeout_s: float = 120.0
    fallback: ProviderSettings | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def provider_settings(self) -> ProviderSettings:
        return ProviderSettings(
            provider=self.provider,
            model=self.model,
            max_tokens=self.max_tokens,
            base_url=self.base_url,
            api_key=self.api_key,
            timeout_s=self.timeout_s,
            options=self.options,
        )


@dataclass(frozen=True, slots=True)
class Binding:
    channel: str
    agent_id: str
    peer_id: str | None = None
    guild_id: str | None = None
    team_id: str | None = None
    account_id: str | None = None


@dataclass(frozen=True, slots=True)
class BudgetLimits:
    session: int | None = None
    daily: int | None = None
    monthly: int | None = None


@dataclass(frozen=True, slots=True)
class BudgetsConfig:
    session: int | None = None
    daily: int | None = None
    monthly: int | None = None
    agents: Mapping[str, BudgetLimits] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None


@dataclass(frozen=True, slots=True)
class MemoryConfig:
    episodic_window: int = 5
    semantic_enabled: bool = True
    context_tokens: int = 4000


@dataclass(frozen=True, slots=True)
class WasmPluginConfig:
    name: str
    path: str
    capabilities: tuple[str, ...] = ()
    secrets: Mapping[str, str] = field(default_factory=dict)  # name -> env var name
    config: Mapping[str, str] = field(default_factory=dict)
    timeout_ms: int = 1000
    memory_max_pages: int = 256
    max_output_bytes: int = 1024 * 1024
    sha256: str | None = None


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    bind: str = "127.0.0.1"
    port: int = 7200
    token: str | None = field(default=None, repr=False)
    max_message_bytes: int = 1024 * 1024
    allowed_origins: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class HooksConfig:
    disable: tuple[str, ...] = ()
    load: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Settings:
    """The whole validated configuration."""

    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    agents: Mapping[str, AgentConfig] = field(default_factory=dict)
    default_agent: str = "default"
    budgets: BudgetsConfig = field(default_factory=BudgetsConfig)
    pricing: Mapping[str, Price] = field(default_factory=dict)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    hooks: HooksConfig = field(default_factory=HooksConfig)
    plugins: tuple[WasmPluginConfig, ...] = ()
    bindings: tuple[Binding, ...] = ()
    #: directory of the config file (relative paths resolve against it)
    config_dir: str = "."
    #: data directory ($EXOCLAW_HOME)
    data_dir: str = "~/.exoclaw"
    config_path: str | None = None


# --------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fact:
    """subject / predicate / object, with its history (SPEC §9)."""

    subject: str
    predicate: str
    object: str
    learned_at: str = ""
    confidence: float = 1.0
    superseded_at: str | None = None
    superseded_by: int | None = None
    id: int | None = None
    source_session: str | None = None


@dataclass(frozen=True, slots=True)
class ContextPart:
    """A memory layer's contribution to a turn's context.

    * ``soul``: ``text`` goes first in the system prompt, never dropped.
    * ``fact``: ``text`` is one remembered fact; ``relevance`` ranks it (higher
      is more relevant); the least relevant are dropped first.
    * ``turn``: ``turn`` is a past exchange; ``relevance`` is not used, the
      oldest turns are dropped first (after all facts).

    ``tokens`` may be left 0; the core then estimates it.
    """

    kind: Literal["soul", "fact", "turn"]
    text: str = ""
    turn: Turn | None = None
    relevance: float = 0.0
    tokens: int = 0
    source: str = ""


@dataclass(frozen=True, slots=True)
class ContextRequest:
    """Handed to ``assemble_context``: who is speaking, to which agent, in which session."""

    agent: AgentConfig
    route: Route
    message: IncomingMessage
    person_key: str
    memory: MemoryConfig
    store: "Store"


# --------------------------------------------------------------------------
# A call and a turn, as observed by hooks
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LLMCall:
    """One LLM call about to be made (``before_llm_call``) or just made (``after_llm_call``)."""

    request: LLMRequest
    agent: AgentConfig
    route: Route
    provider: str
    model: str
    #: 0 for the first call of a turn, 1 after the first tool round, …
    iteration: int
    #: a unique id per call; ``before_llm_call`` and ``after_llm_call`` of one call share it
    call_id: str
    #: the id tying a turn's log lines together
    request_id: str = ""


@dataclass(frozen=True, slots=True)
class LLMCallResult:
    """What ``after_llm_call`` sees. ``error`` is set when the call failed."""

    usage: Usage
    duration_s: float
    ttft_s: float | None = None
    error: str | None = None
    stop_reason: str | None = None


@dataclass(frozen=True, slots=True)
class CompletedTurn:
    """A turn that was committed to the store (``after_turn``)."""

    agent: AgentConfig
    route: Route
    message: IncomingMessage
    person_key: str
    turn: Turn
    reply: str
    usage: Usage
    memory: MemoryConfig
    store: "Store"


@dataclass(frozen=True, slots=True)
class ToolContext:
    """Handed to ``dispatch_tool``: which agent and session asked."""

    agent: AgentConfig
    route: Route
    request_id: str = ""


# --------------------------------------------------------------------------
# Channels (webhooks)
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    channel: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Ignore:
    """``parse_incoming``'s answer for a payload that carries nothing to answer."""

    reason: str = ""


@dataclass(frozen=True, slots=True)
class OutgoingReply:
    channel: str
    reply_to: Mapping[str, Any]
    content: str
    session_key: str = ""


@dataclass(frozen=True, slots=True)
class OutgoingRequest:
    """A platform call as a channel plugin wrote it, with ``{{secret:NAME}}`` placeholders.

    The core substitutes ``secrets`` (name → value; never logged) after the
    plugin returned, checks the URL's host against ``allowed_hosts`` and sends it.
    """

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    allowed_hosts: tuple[str, ...] = ()


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
        self, person_key: str, match: str, limit: int = 20, include_superseded: bool = False
    ) -> list[tuple[Fact, float]]: ...
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
