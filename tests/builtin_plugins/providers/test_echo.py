"""The offline echo provider: its reply format, chunking, usage, /tool calls."""

from __future__ import annotations

import asyncio
import math

import pytest

from builtin_plugins.providers import echo
from exoclaw_hooks.testing import providers_of
from exoclaw_hooks import (
    LLMRequest,
    Message,
    ProviderError,
    ProviderSettings,
    StreamEnd,
    TextDelta,
    ToolCall,
    ToolResult,
    ToolUseEvent,
    Usage,
)


def provider(**options):
    options.setdefault("chunk_delay_s", 0)
    return providers_of(echo)["echo"].factory(ProviderSettings(provider="echo", model="echo", options=options))


def request(*messages: Message, system: str = "") -> LLMRequest:
    return LLMRequest(model="echo", system=system, messages=tuple(messages))


async def run(req: LLMRequest, **options):
    return [e async for e in provider(**options).stream(req)]


def text_of(events) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def calls_of(events):
    return [e.call for e in events if isinstance(e, ToolUseEvent)]


async def test_reply_echoes_verbatim_and_ends_with_note():
    content = 'Grüße, "quoted" \'single\'\nsecond line\ttab 🦀 ✓'
    req = request(Message("user", "earlier"), Message("assistant", "ok"), Message("user", content),
                  system="sys")
    events = await run(req)
    c = 3 + len("earlier") + len("ok") + len(content)
    assert text_of(events) == f"You said: {content}\n\n[echo: 3 messages, {c} characters of context]"
    assert isinstance(events[-1], StreamEnd) and sum(isinstance(e, StreamEnd) for e in events) == 1
    assert events[-1].stop_reason == "end_turn"


async def test_note_singular():
    events = await run(request(Message("user", "x")))
    assert text_of(events) == "You said: x\n\n[echo: 1 message, 1 character of context]"


async def test_streams_in_several_chunks_cut_after_whitespace():
    events = await run(request(Message("user", "one two three four five six seven eight nine ten")))
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) >= 4
    assert all(len(d) >= echo.CHUNK_CHARS for d in deltas[:-1])
    assert all(d[-1].isspace() for d in deltas[:-1])


def test_chunks_keep_text_exactly():
    for text in ["", "a", "  leading", "trailing  ", "x" * 100, "a\n\nb c\td " * 9]:
        assert "".join(echo.chunks(text)) == text


async def test_usage_is_deterministic():
    req = request(Message("user", "hello"), system="You are nice.")
    events = await run(req)
    text = text_of(events)
    assert events[-1].usage == Usage(math.ceil((13 + 5) / 4), math.ceil(len(text) / 4))
    assert await run(req) == events


async def test_zero_delay_never_sleeps_and_delay_sleeps_between_chunks(monkeypatch):
    slept = []

    async def fake_sleep(s):
        slept.append(s)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    events = await run(request(Message("user", "a b c d e f g h i j k l m n o p q r s")))
    assert slept == []
    events = await run(request(Message("user", "a b c d e f g h i j k l m n o p q r s")), chunk_delay_s=0.5)
    assert slept == [0.5] * (sum(isinstance(e, TextDelta) for e in events) - 1)


async def test_tool_request_emits_a_tool_call():
    events = await run(request(Message("user", '/tool get_time {"tz": "Europe/Paris"}')))
    assert text_of(events) == "Calling get_time.\n"
    assert calls_of(events) == [ToolCall("toolu_echo_1", "get_time", {"tz": "Europe/Paris"})]
    assert events[-1].stop_reason == "tool_use"


async def test_tool_without_json_gets_empty_input():
    events = await run(request(Message("user", "/tool ping")))
    assert calls_of(events) == [ToolCall("toolu_echo_1", "ping", {})]


@pytest.mark.parametrize("bad", ["{nope", "[1, 2]", "42"])
async def test_invalid_json_is_explained_without_a_call(bad):
    content = f"/tool ping {bad}"
    events = await run(request(Message("user", content)))
    text = text_of(events)
    assert text.startswith(f"You said: {content}\n\necho: invalid JSON for tool ping: ")
    assert calls_of(events) == [] and events[-1].stop_reason == "end_turn"


async def test_several_tool_lines_give_several_calls_and_ids_never_repeat():
    content = '/tool a {}\n/tool b {"x": [1,\n 2]}\n  /tool c'
    history = (Message("user", "/tool a"), Message("assistant", "", tool_calls=(ToolCall("toolu_echo_1", "a", {}),)),
               Message("tool", tool_results=(ToolResult("toolu_echo_1", "1"),)), Message("assistant", "done"))
    events = await run(request(*history, Message("user", content)))
    assert calls_of(events) == [ToolCall("toolu_echo_2", "a", {}), ToolCall("toolu_echo_3", "b", {"x": [1, 2]}),
                                ToolCall("toolu_echo_4", "c", {})]
    assert text_of(events) == "Calling a, b, c.\n"


async def test_text_before_tool_is_not_a_tool_request():
    events = await run(request(Message("user", "hello\n/tool a")))
    assert calls_of(events) == [] and text_of(events).startswith("You said: hello\n/tool a\n\n[echo:")


async def test_tool_results_are_reported():
    call_a, call_b = ToolCall("toolu_echo_1", "a", {}), ToolCall("toolu_echo_2", "b", {})
    req = request(
        Message("user", "/tool a\n/tool b"),
        Message("assistant", "Calling a, b.\n", tool_calls=(call_a, call_b)),
        Message("tool", tool_results=(ToolResult("toolu_echo_1", "12:00"), ToolResult("toolu_echo_2", "boom", True))),
    )
    events = await run(req)
    c = len("/tool a\n/tool b") + len("Calling a, b.\n") + len("12:00") + len("boom")
    assert text_of(events) == (
        f"Tool a returned: 12:00\nTool b failed: boom\n\n[echo: 3 messages, {c} characters of context]"
    )
    assert calls_of(events) == [] and events[-1].stop_reason == "end_turn"


async def test_fail_option_raises_before_output():
    gen = provider(fail=True).stream(request(Message("user", "x")))
    with pytest.raises(ProviderError) as err:
        await gen.__anext__()
    assert err.value.reason == "echo failure requested" and not err.value.retryable
