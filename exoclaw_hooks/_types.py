"""The data plugins exchange with the core.

Everything here is a small frozen dataclass (or a Protocol the core
implements), so a plugin can keep references without fearing that the core
mutates them later. Only the standard library is imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, AsyncIterator, Literal, Mapping, Protocol, runtime_checkable

if TYPE_CHECKING:  # annotations only: no import cycle at run time
    from ._config import AgentConfig
    from ._storage import Store

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


def split_session_key(session_key: str) -> tuple[str, str, str, str] | None:
    """``(agent_id, channel, account, peer)`` of a key made by :func:`make_session_key`.

    ``None`` when the key does not have that form (a router of its own may
    make other keys).
    """
    parts = session_key.split(":")
    if len(parts) != 4:
        return None
    # every "%25" is an escaped "%": what is left between them holds only "%3A" escapes
    a, c, acc, p = ("%".join(piece.replace("%3A", ":") for piece in part.split("%25")) for part in parts)
    return a, c, acc, p


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
    #: the sender's name as the channel reports it (a group chat's "Caroline"); memory labels what they said with it
    sender: str | None = None


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
    #: 1-based position in its session
    seq: int = 0
    created_at: str | None = None
    #: tokens spent on the turn (input + output over its LLM calls), not its size
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
    #: the most output, counted by ``exoclaw_hooks.count_chars``' rule, this call may stream (set by a
    #: budget that reserved it; ``None``: no limit): past it the core cuts the stream, whatever the
    #: upstream does with ``max_tokens``. Providers do not send it.
    output_limit: int | None = None


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

    ``kind`` names the section the part belongs to:

    * ``soul``: ``text`` goes first in the system prompt, never dropped.
    * ``turn``: ``turn`` is a past exchange, sent as messages (the window);
      whole turns are kept newest first.
    * any other kind (``fact``, ``recall``, one of your own): ``text`` is one
      item of a section of the system prompt shown under ``heading`` (the
      first part of the kind that has one gives it). The most ``relevance``
      items are taken first, within the section's share of the budget; the
      chosen ones are shown sorted by ``order``, each as ``label text`` — a
      label equal to the line before's is left out (a burst of messages of
      one speaker at one time is labelled once).

    ``tokens`` may be left 0; the core then estimates it.
    """

    kind: str
    text: str = ""
    turn: Turn | None = None
    relevance: float = 0.0
    tokens: int = 0
    source: str = ""
    heading: str = ""
    order: float = 0.0
    label: str = ""


@dataclass(frozen=True, slots=True)
class ContextPolicy:
    """How big a turn's context may be, and how it is shared (``context_policy``).

    ``tokens`` is the whole budget; ``shares`` split what the fixed parts
    (soul, system prompt, the new message) leave among the sections
    (``{"fact": 0.2, "recall": 0.5, "turn": 0.3}``); a section's unused share
    flows to the others.
    """

    tokens: int
    shares: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ContextRequest:
    """Handed to ``assemble_context``: who is speaking, to which agent, in which session."""

    agent: AgentConfig
    route: Route
    message: IncomingMessage
    person_key: str
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
    #: what the call is for: ``"turn"`` (the agent's own), ``"memory"`` (memory
    #: extraction), or what a plugin calling ``host.llm`` said
    kind: str = "turn"
    #: who the call is made for (``agent:channel:account``); "" when nobody in particular
    person_key: str = ""


@dataclass(frozen=True, slots=True)
class LLMReply:
    """What ``host.llm`` answers: the whole text, any tool calls, the usage and its cost."""

    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = field(default_factory=Usage)
    stop_reason: str | None = None
    cost_usd: float = 0.0


@dataclass(frozen=True, slots=True)
class LLMCallResult:
    """What ``after_llm_call`` sees. ``error`` is set when the call failed."""

    usage: Usage
    duration_s: float
    ttft_s: float | None = None
    error: str | None = None
    stop_reason: str | None = None
    #: the output the core counted on the stream (``count_chars``' rule): what a provider that
    #: reports no usage may be charged
    output_estimate: int = 0


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

