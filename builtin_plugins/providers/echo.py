"""The offline ``echo`` provider (SPEC §3): a real provider for demos and tests.

Replies are deterministic. With ``N`` = ``len(request.messages)`` and ``C`` =
``len(request.system)`` + the length of every message's ``content`` + the
length of every tool result's ``content``, each reply *ends* with the note::

    \\n\\n[echo: N messages, C characters of context]

(``1 message`` / ``1 character`` in the singular). The text before it:

* the request's last message is a ``user`` message that is a tool request
  (its first non-blank line starts with ``/tool``): the message is cut at
  every line starting with ``/tool``; each piece is ``/tool NAME [JSON]``,
  the JSON (optional, ``{}`` when absent, may span lines) must be an object.
  All valid → text ``Calling NAME.`` (``Calling a, b.`` for several) and one
  ``ToolUseEvent(ToolCall("toolu_echo_<n>", NAME, input))`` per piece, in
  order, stop reason ``tool_use``; ``n`` counts from 1 + the tool calls
  already in the request, so ids never repeat within a conversation, and
  this reply carries no note. Any piece invalid → ``You said: <message>``
  then ``\\n\\necho: <problem>`` (e.g. ``invalid JSON for tool NAME: …``), no
  tool call, stop reason ``end_turn``.
* the last message is a ``tool`` message: one line per result,
  ``Tool NAME returned: <content>`` (``Tool NAME failed: <content>`` for an
  error result; NAME from the preceding calls, else the tool_use_id).
* otherwise: ``You said: <the latest user message, verbatim>``.

The text is streamed in chunks of at least 16 characters cut after
whitespace (their concatenation is the reply exactly), with
``options["chunk_delay_s"]`` (default 0.02) seconds between chunks; ``0``
never sleeps. Usage: input = ceil(C / 4), output = max(1, ceil(len(text) / 4)).
``options["fail"]`` truthy → ``ProviderError("echo failure requested")``
before any output.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from typing import Any, AsyncIterator, Mapping

from exoclaw_hooks import (
    LLMRequest,
    ProviderError,
    ProviderSettings,
    StreamEnd,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolUseEvent,
    Usage,
    hookimpl,
)

CHUNK_CHARS = 16
_TOOL_LINE = re.compile(r"^[ \t]*/tool(?=\s|$)", re.MULTILINE)
_SPLIT_AFTER_SPACE = re.compile(r"(?<=\s)(?=\S)")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def context_chars(request: LLMRequest) -> int:
    """``C``: the system prompt, every message's content and every tool result's content."""
    total = len(request.system)
    for m in request.messages:
        total += len(m.content) + sum(len(r.content) for r in m.tool_results)
    return total


def note(request: LLMRequest) -> str:
    n, c = len(request.messages), context_chars(request)
    return f"\n\n[echo: {_plural(n, 'message')}, {_plural(c, 'character')} of context]"


def chunks(text: str, size: int = CHUNK_CHARS) -> list[str]:
    """Cut ``text`` after whitespace into pieces of at least ``size`` characters (the last may be shorter)."""
    out: list[str] = []
    cur = ""
    for word in _SPLIT_AFTER_SPACE.split(text):
        cur += word
        if len(cur) >= size:
            out.append(cur)
            cur = ""
    if cur or not out:
        out.append(cur)
    return out


def parse_tool_request(content: str) -> list[tuple[str, Mapping[str, Any]]] | str | None:
    """``None`` if ``content`` is no tool request; else the calls, or a problem text."""
    starts = [m.start() for m in _TOOL_LINE.finditer(content)]
    if not starts or content[: starts[0]].strip():
        return None
    calls: list[tuple[str, Mapping[str, Any]]] = []
    for start, end in zip(starts, [*starts[1:], len(content)]):
        piece = content[start:end].strip()[len("/tool"):].strip()
        if not piece:
            return "usage: /tool NAME {json}"
        name, *rest = piece.split(None, 1)
        raw = rest[0].strip() if rest else ""
        if not raw:
            calls.append((name, {}))
            continue
        try:
            value = json.loads(raw)
        except ValueError as exc:
            return f"invalid JSON for tool {name}: {exc}"
        if not isinstance(value, dict):
            return f"invalid JSON for tool {name}: the input must be a JSON object"
        calls.append((name, value))
    return calls


class EchoProvider:
    """A :class:`~exoclaw_hooks.Provider` that needs no network."""

    def __init__(self, settings: ProviderSettings):
        self.settings = settings
        self.delay = float(settings.options.get("chunk_delay_s", 0.02))
        self.fail = bool(settings.options.get("fail", False))

    async def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        if self.fail:
            raise ProviderError("echo failure requested", retryable=False)
        text, calls = self._answer(request)
        for i, piece in enumerate(chunks(text)):
            if i and self.delay > 0:
                await asyncio.sleep(self.delay)
            yield TextDelta(piece)
        for call in calls:
            yield ToolUseEvent(call)
        usage = Usage(
            input_tokens=math.ceil(context_chars(request) / 4),
            output_tokens=max(1, math.ceil(len(text) / 4)),
        )
        yield StreamEnd("tool_use" if calls else "end_turn", usage)

    def _answer(self, request: LLMRequest) -> tuple[str, list[ToolCall]]:
        msgs = request.messages
        last = msgs[-1] if msgs else None
        if last is not None and last.role == "tool":
            names = {c.id: c.name for m in msgs if m.role == "assistant" for c in m.tool_calls}
            lines = [
                f"Tool {names.get(r.tool_use_id, r.tool_use_id)} "
                f"{'failed' if r.is_error else 'returned'}: {r.content}"
                for r in last.tool_results
            ]
            return "\n".join(lines) + note(request), []
        said = next((m.content for m in reversed(msgs) if m.role == "user"), "")
        if last is not None and last.role == "user":
            parsed = parse_tool_request(said)
            if isinstance(parsed, list):
                seen = sum(len(m.tool_calls) for m in msgs)
                calls = [
                    ToolCall(f"toolu_echo_{seen + i}", name, args)
                    for i, (name, args) in enumerate(parsed, start=1)
                ]
                return f"Calling {', '.join(c.name for c in calls)}.\n", calls
            if isinstance(parsed, str):
                return f"You said: {said}\n\necho: {parsed}" + note(request), []
        return f"You said: {said}" + note(request), []


@hookimpl
def register_providers(register: Any, host: Any) -> None:
    # zero-config without any key: the offline provider (serve says so, loudly)
    register("echo", EchoProvider, default_model="echo", auto=1000)
