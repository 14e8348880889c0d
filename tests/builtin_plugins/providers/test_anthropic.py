"""The anthropic provider: request shape (Messages API) and stream parsing."""

from __future__ import annotations

import json

import pytest

from builtin_plugins.providers.anthropic import AnthropicDecoder, to_messages
from builtin_plugins.providers.sse import SSEEvent
from exoclaw_hooks import (
    LLMRequest,
    Message,
    ProviderError,
    StreamEnd,
    TextDelta,
    ToolCall,
    ToolResult,
    ToolSpec,
    ToolUseEvent,
    Usage,
)
from tests.builtin_plugins.providers.provider_helpers import ask, calls_of, collect, make_provider, text_of
from tests.fakes.fixtures import fake_host, fake_llm, http_session  # noqa: F401  (fixtures)
from tests.fakes.llm_script import Hang, InStreamError, Raw, Reply

TOOLS = (
    ToolSpec("get_weather", "Current weather", {"type": "object", "properties": {"city": {"type": "string"}},
                                                "required": ["city"]}),
    ToolSpec("now", "The time"),
)
CONVERSATION = (
    Message("user", "Weather in Paris and the time?"),
    Message("assistant", "Let me look.", tool_calls=(
        ToolCall("toolu_1", "get_weather", {"city": "Paris"}), ToolCall("toolu_2", "now", {}))),
    Message("tool", tool_results=(ToolResult("toolu_1", "18°C, sunny"), ToolResult("toolu_2", "boom", is_error=True))),
    Message("assistant", "Paris: 18°C. The clock failed."),
    Message("user", "Thanks!"),
)


def provider(host, server, **kwargs):
    return make_provider("anthropic", host, server.url, **kwargs)


async def test_request_shape(fake_llm, fake_host):
    request = LLMRequest("claude-sonnet-4-5", "You are terse.", CONVERSATION, tools=TOOLS, max_tokens=321)
    await collect(provider(fake_host, fake_llm, api_key="sk-ant-test"), request)
    (sent,) = fake_llm.requests
    assert sent.path == "/v1/messages" and sent.method == "POST"
    assert sent.headers["x-api-key"] == "sk-ant-test"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["content-type"] == "application/json"
    assert "authorization" not in sent.headers
    body = sent.json
    assert set(body) == {"model", "max_tokens", "stream", "system", "messages", "tools"}
    assert body["model"] == "claude-sonnet-4-5" and body["max_tokens"] == 321 and body["stream"] is True
    assert body["system"] == "You are terse."
    assert body["tools"] == [
        {"name": "get_weather", "description": "Current weather", "input_schema": dict(TOOLS[0].input_schema)},
        {"name": "now", "description": "The time", "input_schema": {"type": "object"}},
    ]
    assert body["messages"] == [
        {"role": "user", "content": "Weather in Paris and the time?"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_2", "name": "now", "input": {}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18°C, sunny", "is_error": False},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": "boom", "is_error": True},
        ]},
        {"role": "assistant", "content": [{"type": "text", "text": "Paris: 18°C. The clock failed."}]},
        {"role": "user", "content": "Thanks!"},
    ]


async def test_no_system_no_tools_are_omitted(fake_llm, fake_host):
    await collect(provider(fake_host, fake_llm), ask("hi"))
    body = fake_llm.requests[0].json
    assert "system" not in body and "tools" not in body
    assert body["messages"] == [{"role": "user", "content": "hi"}]


def test_consecutive_roles_are_merged_tool_results_first():
    messages = to_messages([
        Message("assistant", "", tool_calls=(ToolCall("t1", "now", {}),)),
        Message("tool", tool_results=(ToolResult("t1", "12:00"),)),
        Message("user", "and now?"),
        Message("user", "hello?"),
        Message("assistant", ""),  # empty: dropped
        Message("assistant", "ok"),
    ])
    assert messages == [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "now", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": "12:00", "is_error": False},
            {"type": "text", "text": "and now?"},
            {"type": "text", "text": "hello?"},
        ]},
        {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
    ]


async def test_base_url_default_and_trailing_slash(fake_host):
    p = make_provider("anthropic", fake_host, None)
    assert p.url() == "https://api.anthropic.com/v1/messages"
    assert make_provider("anthropic", fake_host, "http://h:1/").url() == "http://h:1/v1/messages"


async def test_text_tools_usage(fake_llm, fake_host):
    fake_llm.enqueue(Reply(text_chunks=["Let ", "me ", "check."],
                           tool_calls=[("get_weather", {"city": "Paris", "units": ["c"]}), ("now", {})],
                           usage=(120, 45), cache_read=30, cache_write=7))
    events = await collect(provider(fake_host, fake_llm))
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Let ", "me ", "check."]
    calls = calls_of(events)
    assert [(c.name, c.input) for c in calls] == [("get_weather", {"city": "Paris", "units": ["c"]}), ("now", {})]
    assert all(c.id.startswith("toolu_") for c in calls)
    assert events[-1] == StreamEnd("tool_use", Usage(120, 45, cache_read_tokens=30, cache_write_tokens=7))
    assert sum(isinstance(e, StreamEnd) for e in events) == 1


async def test_newer_message_delta_usage_overrides(fake_llm, fake_host):
    fake_llm.enqueue(Reply(text_chunks=["x"], usage=(99, 5), cache_read=3, full_delta_usage=True))
    events = await collect(provider(fake_host, fake_llm))
    assert events[-1].usage == Usage(99, 5, cache_read_tokens=3)


async def test_text_is_yielded_as_it_arrives(fake_llm, fake_host):
    # message_start, content_block_start, ping, one text_delta, then nothing more
    fake_llm.enqueue(Hang(after_chunks=4, reply=Reply(text_chunks=["first", "second"])))
    stream = provider(fake_host, fake_llm, read_timeout_s=10).stream(ask())
    assert await stream.__anext__() == TextDelta("first")
    await stream.aclose()


def feed_all(decoder, events):
    out = []
    for name, data in events:
        out.append(decoder.feed(SSEEvent(name, json.dumps(data)), json.loads))
    return out


def test_tool_call_is_emitted_at_content_block_stop():
    d = AnthropicDecoder()
    out = feed_all(d, [
        ("message_start", {"type": "message_start", "message": {"id": "m", "usage": {"input_tokens": 5,
                                                                                     "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {
            "type": "tool_use", "id": "toolu_9", "name": "now", "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "input_json_delta", "partial_json": ""}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {
            "type": "tool_use", "id": "toolu_10", "name": "get_weather", "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1,
                                 "delta": {"type": "input_json_delta", "partial_json": '{"ci'}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1,
                                 "delta": {"type": "input_json_delta", "partial_json": 'ty": "Oslo"}'}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"},
                           "usage": {"output_tokens": 30}}),
        ("message_stop", {"type": "message_stop"}),
    ])
    assert out[:3] == [[], [], []]
    assert out[3] == [ToolUseEvent(ToolCall("toolu_9", "now", {}))]  # empty partial JSON -> {}
    assert out[4:7] == [[], [], []]
    assert out[7] == [ToolUseEvent(ToolCall("toolu_10", "get_weather", {"city": "Oslo"}))]
    assert out[9] == [StreamEnd("tool_use", Usage(5, 30))] and d.done


def test_unknown_blocks_and_events_are_ignored():
    d = AnthropicDecoder()
    out = feed_all(d, [
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "thinking", "thinking": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "thinking_delta", "thinking": "hmm"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("ping", {"type": "ping"}),
        ("brand_new_event", {"type": "brand_new_event"}),
    ])
    assert out == [[], [], [], [], []] and not d.done


@pytest.mark.parametrize("error_type,retryable", [
    ("overloaded_error", True), ("rate_limit_error", True), ("api_error", True),
    ("invalid_request_error", False),
])
async def test_error_event_in_a_200_stream(fake_llm, fake_host, error_type, retryable):
    fake_llm.enqueue(InStreamError("Overloaded right now", error_type=error_type))
    with pytest.raises(ProviderError) as err:
        await collect(provider(fake_host, fake_llm))
    assert err.value.reason == "Overloaded right now"
    assert str(err.value) == "provider error: Overloaded right now"
    assert err.value.retryable is retryable and err.value.output_started is False


async def test_error_event_after_text_marks_output_started(fake_llm, fake_host):
    fake_llm.enqueue(InStreamError("Overloaded", text_chunks=["partial "]))
    events = []
    with pytest.raises(ProviderError) as err:
        async for event in provider(fake_host, fake_llm).stream(ask()):
            events.append(event)
    assert text_of(events) == "partial " and err.value.output_started is True


async def test_malformed_event_is_a_clear_error(fake_llm, fake_host):
    fake_llm.enqueue(Raw([b'event: content_block_delta\ndata: {"type": "content_block_delta"}\n\n']))
    with pytest.raises(ProviderError, match="malformed content_block_delta"):
        await collect(provider(fake_host, fake_llm))


async def test_invalid_tool_json_is_a_clear_error():
    d = AnthropicDecoder()
    feed_all(d, [("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {
        "type": "tool_use", "id": "t", "name": "now", "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "input_json_delta", "partial_json": '{"a": '}})])
    with pytest.raises(ProviderError, match="tool call now has invalid JSON input"):
        d.feed(SSEEvent("content_block_stop", '{"type": "content_block_stop", "index": 0}'), json.loads)


def test_tool_input_given_whole_in_content_block_start():
    d = AnthropicDecoder()
    out = feed_all(d, [
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {
            "type": "tool_use", "id": "t", "name": "now", "input": {"tz": "UTC"}}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ])
    assert out[1] == [ToolUseEvent(ToolCall("t", "now", {"tz": "UTC"}))]
