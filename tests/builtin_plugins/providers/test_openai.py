"""The openai provider: request shape (Chat Completions) and stream parsing."""

from __future__ import annotations

import json

import pytest

from builtin_plugins.providers.openai import OpenAIDecoder
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
from tests.builtin_plugins.providers.provider_helpers import ask, calls_of, collect, make_provider
from tests.fakes.fixtures import fake_host, fake_llm, http_session  # noqa: F401  (fixtures)
from tests.fakes.llm_script import InStreamError, Raw, Reply

TOOLS = (
    ToolSpec("get_weather", "Current weather", {"type": "object", "properties": {"city": {"type": "string"}}}),
    ToolSpec("now", "The time"),
)
CONVERSATION = (
    Message("user", "Weather in Paris and the time?"),
    Message("assistant", "", tool_calls=(
        ToolCall("call_1", "get_weather", {"city": "Paris"}), ToolCall("call_2", "now", {}))),
    Message("tool", tool_results=(ToolResult("call_1", "18°C"), ToolResult("call_2", "no clock", is_error=True))),
    Message("assistant", "Paris: 18°C."),
    Message("user", "Thanks!"),
)


def provider(host, server, **kwargs):
    return make_provider("openai", host, server.openai_url, **kwargs)


async def test_request_shape(fake_llm, fake_host):
    request = LLMRequest("gpt-4o", "You are terse.", CONVERSATION, tools=TOOLS, max_tokens=321)
    await collect(provider(fake_host, fake_llm, api_key="sk-test"), request)
    (sent,) = fake_llm.requests
    assert sent.path == "/v1/chat/completions" and sent.method == "POST"
    assert sent.headers["authorization"] == "Bearer sk-test"
    assert sent.headers["content-type"] == "application/json"
    body = sent.json
    assert set(body) == {"model", "max_tokens", "stream", "stream_options", "messages", "tools"}
    assert body["model"] == "gpt-4o" and body["max_tokens"] == 321
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["tools"] == [
        {"type": "function", "function": {"name": "get_weather", "description": "Current weather",
                                          "parameters": dict(TOOLS[0].input_schema)}},
        {"type": "function", "function": {"name": "now", "description": "The time",
                                          "parameters": {"type": "object"}}},
    ]
    messages = body["messages"]
    assert messages[0] == {"role": "system", "content": "You are terse."}
    assert messages[1] == {"role": "user", "content": "Weather in Paris and the time?"}
    assert messages[2]["role"] == "assistant" and messages[2]["content"] is None
    assert [(c["id"], c["type"], c["function"]["name"], json.loads(c["function"]["arguments"]))
            for c in messages[2]["tool_calls"]] == [("call_1", "function", "get_weather", {"city": "Paris"}),
                                                    ("call_2", "function", "now", {})]
    assert all(isinstance(c["function"]["arguments"], str) for c in messages[2]["tool_calls"])
    assert messages[3] == {"role": "tool", "tool_call_id": "call_1", "content": "18°C"}
    assert messages[4] == {"role": "tool", "tool_call_id": "call_2", "content": "Error: no clock"}
    assert messages[5] == {"role": "assistant", "content": "Paris: 18°C."}
    assert messages[6] == {"role": "user", "content": "Thanks!"}
    assert len(messages) == 7


async def test_assistant_text_with_tool_calls_keeps_its_text(fake_llm, fake_host):
    request = LLMRequest("m", "", (Message("user", "q"), Message("assistant", "Checking.", tool_calls=(
        ToolCall("c1", "now", {}),)), Message("tool", tool_results=(ToolResult("c1", "noon"),))))
    await collect(provider(fake_host, fake_llm), request)
    messages = fake_llm.requests[0].json["messages"]
    assert messages[0] == {"role": "user", "content": "q"}  # no system message when the prompt is empty
    assert messages[1]["content"] == "Checking."


async def test_no_key_no_authorization_and_options(fake_llm, fake_host):
    await collect(provider(fake_host, fake_llm, api_key=None, max_tokens_param="max_completion_tokens"), ask())
    sent = fake_llm.requests[0]
    assert "authorization" not in sent.headers
    assert sent.json["max_completion_tokens"] == 4096 and "max_tokens" not in sent.json
    assert "tools" not in sent.json


async def test_base_url_default_and_trailing_slash(fake_host):
    assert make_provider("openai", fake_host, None).url() == "https://api.openai.com/v1/chat/completions"
    assert make_provider("openai", fake_host, "http://h:1/v1/").url() == "http://h:1/v1/chat/completions"


async def test_text_tools_usage(fake_llm, fake_host):
    fake_llm.enqueue(Reply(text_chunks=["Let ", "me ", "check."],
                           tool_calls=[("get_weather", {"city": "Paris"}), ("now", {}),
                                       ("get_weather", {"city": "Rome", "days": [1, 2]})],
                           usage=(120, 45), cache_read=30))
    events = await collect(provider(fake_host, fake_llm))
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Let ", "me ", "check."]
    assert [(c.name, c.input) for c in calls_of(events)] == [
        ("get_weather", {"city": "Paris"}), ("now", {}), ("get_weather", {"city": "Rome", "days": [1, 2]})]
    assert len({c.id for c in calls_of(events)}) == 3
    # prompt_tokens (150) include the 30 cached ones
    assert events[-1] == StreamEnd("tool_calls", Usage(120, 45, cache_read_tokens=30))


def feed(decoder, *chunks):
    out = []
    for chunk in chunks:
        data = chunk if isinstance(chunk, str) else json.dumps(chunk)
        out.append(decoder.feed(SSEEvent(None, data), json.loads))
    return out


def delta(d, finish=None, **extra):
    return {"choices": [{"index": 0, "delta": d, "finish_reason": finish}], **extra}


def test_interleaved_tool_fragments_accumulate_by_index():
    d = OpenAIDecoder()
    out = feed(
        d,
        delta({"role": "assistant", "content": None, "tool_calls": [
            {"index": 0, "id": "call_a", "type": "function", "function": {"name": "now", "arguments": ""}},
            {"index": 1, "id": "call_b", "type": "function", "function": {"name": "get_weather", "arguments": ""}},
        ]}),
        delta({"tool_calls": [{"index": 1, "function": {"arguments": '{"city"'}}]}),
        delta({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}),
        delta({"tool_calls": [{"index": 1, "function": {"arguments": ': "Oslo"}'}}]}),
        delta({}, "tool_calls"),
        {"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 4}},
        "[DONE]",
    )
    assert out[:4] == [[], [], [], []]
    assert out[4] == [ToolUseEvent(ToolCall("call_a", "now", {})),
                      ToolUseEvent(ToolCall("call_b", "get_weather", {"city": "Oslo"}))]
    assert out[5] == [] and out[6] == [StreamEnd("tool_calls", Usage(10, 4))] and d.done


def test_usage_in_the_finish_chunk_and_missing_usage():
    d = OpenAIDecoder()
    out = feed(d, delta({"content": "hi"}), delta({}, "stop", usage={"prompt_tokens": 7, "completion_tokens": 1,
                                                                    "prompt_tokens_details": None}), "[DONE]")
    assert out == [[TextDelta("hi")], [], [StreamEnd("stop", Usage(7, 1))]]
    d = OpenAIDecoder()
    assert feed(d, delta({}, "stop"), "[DONE]")[-1] == [StreamEnd("stop", Usage())]


def test_calls_without_finish_reason_are_emitted_at_done_and_ids_filled():
    d = OpenAIDecoder()
    out = feed(d, delta({"tool_calls": [{"function": {"name": "now", "arguments": "{}"}}]}), "[DONE]")
    assert out[-1] == [ToolUseEvent(ToolCall("call_0", "now", {})), StreamEnd(None, Usage())]


def test_other_choices_and_empty_content_are_ignored():
    d = OpenAIDecoder()
    out = feed(d, {"choices": [{"index": 1, "delta": {"content": "other"}}]}, delta({"content": ""}),
               delta({"content": None, "reasoning_content": "hmm"}))
    assert out == [[], [], []]


@pytest.mark.parametrize("error_type,retryable", [("server_error", True), ("invalid_request_error", False)])
async def test_error_object_in_the_stream(fake_llm, fake_host, error_type, retryable):
    fake_llm.enqueue(InStreamError("The server had an error processing your request.", error_type=error_type))
    with pytest.raises(ProviderError) as err:
        await collect(provider(fake_host, fake_llm))
    assert err.value.reason == "The server had an error processing your request."
    assert err.value.retryable is retryable and err.value.output_started is False


async def test_error_after_text_marks_output_started(fake_llm, fake_host):
    fake_llm.enqueue(InStreamError("boom", text_chunks=["par", "tial"]))
    events = []
    with pytest.raises(ProviderError) as err:
        async for event in provider(fake_host, fake_llm).stream(ask()):
            events.append(event)
    assert events == [TextDelta("par"), TextDelta("tial")] and err.value.output_started is True


async def test_missing_done_is_a_cut_stream(fake_llm, fake_host):
    chunk = json.dumps(delta({}, "stop"))
    fake_llm.enqueue(Raw([f"data: {chunk}\n\n".encode()]))
    with pytest.raises(ProviderError, match="stream ended before completion"):
        await collect(provider(fake_host, fake_llm))


async def test_done_without_final_blank_line_is_accepted(fake_llm, fake_host):
    fake_llm.enqueue(Raw([f"data: {json.dumps(delta({'content': 'ok'}, 'stop'))}\n\ndata: [DONE]".encode()]))
    events = await collect(provider(fake_host, fake_llm))
    assert events == [TextDelta("ok"), StreamEnd("stop", Usage())]


async def test_invalid_tool_arguments_are_a_clear_error(fake_llm, fake_host):
    d = OpenAIDecoder()
    feed(d, delta({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "now", "arguments": "{oops"}}]}))
    with pytest.raises(ProviderError, match="tool call now has invalid JSON arguments"):
        feed(d, delta({}, "tool_calls"))
