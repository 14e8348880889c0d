"""What a test can script the fake LLM server to do, one item per request.

``server.enqueue(item)`` (either API) or ``server.enqueue(item, api="openai")``:

* :class:`Reply` — a normal streamed answer: text chunks, tool calls, usage.
* :class:`Fail` — an HTTP error with the API's own error body.
* :class:`InStreamError` — a 200 stream that sends some text, then an error event.
* :class:`Cut` — a stream that stops after ``after_chunks`` events.
* :class:`Hang` — sends nothing (or ``after_chunks`` events) and never finishes.
* :class:`Raw` — bytes written as given (broken JSON, odd line ends …).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence


@dataclass(frozen=True)
class FakeToolCall:
    """A tool call in a :class:`Reply`; its JSON input is streamed in ``pieces``."""

    name: str
    input: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None
    pieces: int = 3

    def argument_pieces(self, text: str) -> list[str]:
        """``text`` cut into at most ``pieces`` non-empty parts (at least one, maybe empty)."""
        n = max(1, min(self.pieces, len(text)))
        size = -(-len(text) // n) if text else 1
        return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def as_tool_call(value: Any) -> FakeToolCall:
    """Accept ``FakeToolCall``, ``(name, input)`` or ``{"name", "input", "id"}``."""
    if isinstance(value, FakeToolCall):
        return value
    if isinstance(value, tuple):
        return FakeToolCall(*value)
    return FakeToolCall(**value)


@dataclass(frozen=True)
class Reply:
    """A successful streamed answer.

    ``usage`` is ``(input_tokens, output_tokens)``; ``None`` derives both from
    the sizes of the request and the reply. ``stop_reason`` defaults to the
    API's own (``end_turn``/``tool_use``, ``stop``/``tool_calls``).
    ``delay_s`` waits before the response headers, ``chunk_delay_s`` between
    events. ``full_delta_usage`` makes Anthropic's ``message_delta`` carry the
    input and cache counts too, as newer API versions do.
    """

    text_chunks: Sequence[str] = ()
    tool_calls: Sequence[Any] = ()
    usage: tuple[int, int] | None = None
    cache_read: int = 0
    cache_write: int = 0
    stop_reason: str | None = None
    delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    model: str | None = None
    full_delta_usage: bool = False
    pings: bool = True

    @property
    def text(self) -> str:
        return "".join(self.text_chunks)

    @property
    def calls(self) -> list[FakeToolCall]:
        return [as_tool_call(c) for c in self.tool_calls]


@dataclass(frozen=True)
class Fail:
    """An HTTP error. ``error_type``/``code`` default to what the real API sends
    for ``status``; ``body`` (str or bytes) replaces the JSON body entirely."""

    status: int = 500
    message: str = "Internal server error"
    headers: Mapping[str, str] = field(default_factory=dict)
    error_type: str | None = None
    code: str | None = None
    body: str | bytes | None = None
    delay_s: float = 0.0


@dataclass(frozen=True)
class InStreamError:
    """Status 200, the stream starts (``text_chunks`` are sent), then an error event.

    ``error_type`` defaults to ``overloaded_error`` (Anthropic) / ``server_error`` (OpenAI).
    """

    message: str = "Overloaded"
    error_type: str | None = None
    text_chunks: Sequence[str] = ()


@dataclass(frozen=True)
class Cut:
    """Send the first ``after_chunks`` events of ``reply`` (default: the echo reply), then stop.

    ``abort=True`` drops the connection mid-body (the chunked encoding is left
    unfinished); ``False`` ends the HTTP response cleanly, the SSE stream incomplete.
    """

    after_chunks: int = 1
    reply: Reply | None = None
    abort: bool = True


@dataclass(frozen=True)
class Hang:
    """Never finish: with ``after_chunks=0`` not even the response headers are sent."""

    after_chunks: int = 0
    reply: Reply | None = None


@dataclass(frozen=True)
class Raw:
    """Write ``chunks`` (bytes or str) as they are, one write each."""

    chunks: Sequence[bytes | str] = ()
    status: int = 200
    content_type: str = "text/event-stream; charset=utf-8"
    headers: Mapping[str, str] = field(default_factory=dict)
    chunk_delay_s: float = 0.0


Script = Reply | Fail | InStreamError | Cut | Hang | Raw
