"""What a turn says while it runs: typed events, the same for every face.

The WebSocket, the OpenAI-compatible face and the channels all hand an
:class:`~exoclaw_hooks.IncomingMessage` to :meth:`Runtime.submit` with a
*sink* (``async sink(event)``) and turn these events into their own wire
format. Every turn ends with exactly one :data:`DONE`; an
:class:`ErrorEvent` (with a :class:`ErrorKind`, never recovered from text)
comes right before it when the turn failed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping

from exoclaw_hooks import ToolCall, ToolResult, Usage


class NoAgent(Exception):
    """No agent answers this message (``no agent configured for <channel>:<account>:<peer>``); nothing ran."""


class ErrorKind(str, enum.Enum):
    """Why a turn failed; each face maps it to its own status (the OpenAI face: 429, 502 …)."""

    BUDGET = "budget"  # a budget refused a call: "token budget exceeded (...)" / "budget exceeded (...)"
    PROVIDER = "provider"  # "provider error: ..."
    DEADLINE = "deadline"  # the call's or the turn's deadline passed
    TOOL_LOOP = "tool_loop"  # the model kept asking for tools past max_tool_iterations
    REFUSED = "refused"  # a before_llm_call plugin refused the call
    CANCELLED = "cancelled"  # the gateway is shutting down, or the client cancelled (chat.cancel)
    STORE = "store"  # the store's database cannot be reached: "storage unavailable: ..." (nothing stored)
    INTERNAL = "internal"  # a bug: the turn was not completed


@dataclass(frozen=True, slots=True)
class TextEvent:
    """The next chunk of the reply, as soon as the provider sent it."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallEvent:
    call: ToolCall


@dataclass(frozen=True, slots=True)
class ToolResultEvent:
    result: ToolResult


@dataclass(frozen=True, slots=True)
class UsageEvent:
    """The turn's usage (sums over its LLM calls) and its first call's context composition."""

    usage: Usage
    cost_usd: float = 0.0
    priced: bool = True
    context: Mapping[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "input_tokens": self.usage.input_tokens,
            "output_tokens": self.usage.output_tokens,
            "cost_usd": self.cost_usd,
        }
        if not self.priced:
            data["unpriced"] = True
        if self.context:
            data["context"] = dict(self.context)
        return data


@dataclass(frozen=True, slots=True)
class BudgetWarningEvent:
    """A budget scope passed its ``warn_at`` share with this turn's call (once per scope and period).

    ``data``: ``{"scope", "unit", "used", "limit", "share", "period_start"}``. The
    WebSocket sends it as a ``budget.warning`` event; faces without such an
    event (the OpenAI face, channels) leave it out.
    """

    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    kind: ErrorKind
    message: str


@dataclass(frozen=True, slots=True)
class DoneEvent:
    """Nothing more comes for this turn (and, unless an error came first, it is stored)."""


DONE = DoneEvent()

TurnEvent = TextEvent | ToolCallEvent | ToolResultEvent | UsageEvent | BudgetWarningEvent | ErrorEvent | DoneEvent
Sink = Callable[[TurnEvent], Awaitable[None]]


async def discard(event: TurnEvent) -> None:
    """A sink for turns nobody watches."""
