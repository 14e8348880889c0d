"""The fake LLM server is faithful: the official clients parse it as our providers do.

Each scripted reply is played twice — once to the official ``anthropic`` /
``openai`` client, once to our provider — and both must agree on text, tool
calls (name and parsed input), stop reason and usage. The fake's error
bodies must make the official clients raise their own error classes with
the fake's message.
"""

from __future__ import annotations

import json

import anthropic
import openai
import pytest

from builtin_plugins.providers.anthropic import AnthropicProvider
from builtin_plugins.providers.openai import OpenAIProvider
from exoclaw_hooks import LLMRequest, Message, ProviderError, ProviderSettings, StreamEnd, TextDelta, ToolSpec, ToolUseEvent
from tests.fakes.fixtures import fake_host, fake_llm, http_session  # noqa: F401  (fixtures)
from tests.fakes.llm_script import Fail, InStreamError, Reply

TOOL = ToolSpec("get_weather", "Weather of a city", {"type": "object", "properties": {"city": {"type": "string"}}})
REPLIES = [
    pytest.param(Reply(text_chunks=["Hello", ", wor", "ld — ünïcode ✓"], usage=(31, 7)), id="text"),
    pytest.param(Reply(tool_calls=[("get_weather", {"city": "Paris", "days": [1, 2]})], usage=(50, 20)), id="tool"),
    pytest.param(Reply(text_chunks=["Let me check. "],
                       tool_calls=[("get_weather", {"city": "Oslo"}), ("get_weather", {"city": "Rome"}),
                                   ("get_time", {})],
                       usage=(80, 40), cache_read=12, cache_write=5), id="text+3tools+cache"),
    pytest.param(Reply(text_chunks=["cut short"], stop_reason="max_tokens", usage=(9, 2)), id="stop_reason"),
]


async def ours(provider_cls, base_url, host):
    settings = ProviderSettings(provider_cls.name, "fake-model", base_url=base_url, api_key="x", timeout_s=5)
    request = LLMRequest("fake-model", "be brief", (Message("user", "weather?"),), tools=(TOOL,))
    events = [e async for e in provider_cls(settings, host).stream(request)]
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    calls = [(e.call.id, e.call.name, dict(e.call.input)) for e in events if isinstance(e, ToolUseEvent)]
    return text, calls, events[-1]


@pytest.mark.parametrize("reply", REPLIES)
async def test_anthropic_client_agrees(fake_llm, fake_host, reply):
    fake_llm.enqueue(reply, reply)
    client = anthropic.AsyncAnthropic(base_url=fake_llm.url, api_key="x", max_retries=0)
    async with client.messages.stream(
        model="fake-model", max_tokens=100, system="be brief",
        messages=[{"role": "user", "content": "weather?"}],
        tools=[{"name": TOOL.name, "description": TOOL.description, "input_schema": dict(TOOL.input_schema)}],
    ) as stream:
        streamed = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    await client.close()
    text, calls, end = await ours(AnthropicProvider, fake_llm.url, fake_host)

    assert streamed == text == reply.text
    official_calls = [(b.id, b.name, b.input) for b in final.content if b.type == "tool_use"]
    assert [c[1:] for c in official_calls] == [c[1:] for c in calls] == [(c.name, dict(c.input)) for c in reply.calls]
    assert all(c[0].startswith("toolu_") for c in official_calls + calls)
    assert isinstance(end, StreamEnd) and end.stop_reason == final.stop_reason
    u = final.usage
    assert (end.usage.input_tokens, end.usage.output_tokens) == (u.input_tokens, u.output_tokens) == reply.usage
    assert end.usage.cache_read_tokens == u.cache_read_input_tokens == reply.cache_read
    assert end.usage.cache_write_tokens == u.cache_creation_input_tokens == reply.cache_write


@pytest.mark.parametrize("reply", REPLIES)
async def test_openai_client_agrees(fake_llm, fake_host, reply):
    fake_llm.enqueue(reply, reply)
    client = openai.AsyncOpenAI(base_url=fake_llm.openai_url, api_key="x", max_retries=0)
    chunks = [c async for c in await client.chat.completions.create(
        model="fake-model", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "weather?"}],
        tools=[{"type": "function", "function": {"name": TOOL.name, "description": TOOL.description,
                                                  "parameters": dict(TOOL.input_schema)}}],
    )]
    await client.close()
    text, calls, end = await ours(OpenAIProvider, fake_llm.openai_url, fake_host)

    official_text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    tools: dict[int, dict] = {}
    for c in chunks:
        for tc in (c.choices[0].delta.tool_calls or []) if c.choices else []:
            slot = tools.setdefault(tc.index, {"id": tc.id, "name": tc.function.name, "args": ""})
            slot["args"] += tc.function.arguments or ""
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    usage = chunks[-1].usage

    assert official_text == text == reply.text
    official_calls = [(t["id"], t["name"], json.loads(t["args"])) for _, t in sorted(tools.items())]
    assert [c[1:] for c in official_calls] == [c[1:] for c in calls] == [(c.name, dict(c.input)) for c in reply.calls]
    assert all(c[0].startswith("call_") for c in official_calls + calls)
    assert finish == [end.stop_reason]
    assert chunks[-1].choices == [] and usage is not None
    cached = usage.prompt_tokens_details.cached_tokens
    assert cached == end.usage.cache_read_tokens == reply.cache_read
    assert (usage.prompt_tokens - cached, usage.completion_tokens) == (end.usage.input_tokens, end.usage.output_tokens)
    assert (end.usage.input_tokens, end.usage.output_tokens) == reply.usage


async def test_openai_stream_helper_accumulates_tool_arguments(fake_llm):
    fake_llm.enqueue(Reply(tool_calls=[("get_weather", {"city": "Paris"}), ("get_time", {"tz": "UTC"})]))
    client = openai.AsyncOpenAI(base_url=fake_llm.openai_url, api_key="x", max_retries=0)
    async with client.chat.completions.stream(model="m", messages=[{"role": "user", "content": "q"}]) as stream:
        final = await stream.get_final_completion()
    await client.close()
    calls = final.choices[0].message.tool_calls
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"}), ("get_time", {"tz": "UTC"})]
    assert final.choices[0].finish_reason == "tool_calls"


async def test_non_streaming_answers_parse(fake_llm):
    fake_llm.enqueue(Reply(text_chunks=["a", "b"], usage=(3, 4)), Reply(text_chunks=["c"], usage=(5, 6)))
    a = anthropic.AsyncAnthropic(base_url=fake_llm.url, api_key="x", max_retries=0)
    message = await a.messages.create(model="m", max_tokens=10, messages=[{"role": "user", "content": "q"}])
    o = openai.AsyncOpenAI(base_url=fake_llm.openai_url, api_key="x", max_retries=0)
    completion = await o.chat.completions.create(model="m", messages=[{"role": "user", "content": "q"}])
    await a.close()
    await o.close()
    assert message.content[0].text == "ab" and message.usage.output_tokens == 4
    assert completion.choices[0].message.content == "c" and completion.usage.completion_tokens == 6


ANTHROPIC_ERRORS = [
    (401, anthropic.AuthenticationError, "authentication_error"),
    (429, anthropic.RateLimitError, "rate_limit_error"),
    (500, anthropic.InternalServerError, "api_error"),
    (529, anthropic.OverloadedError, "overloaded_error"),
    (400, anthropic.BadRequestError, "invalid_request_error"),
]


@pytest.mark.parametrize("status,error_class,error_type", ANTHROPIC_ERRORS)
async def test_anthropic_client_raises_its_error_class(fake_llm, fake_host, status, error_class, error_type):
    message = f"fake says {status}"
    fake_llm.enqueue(Fail(status, message), Fail(status, message))
    client = anthropic.AsyncAnthropic(base_url=fake_llm.url, api_key="x", max_retries=0)
    with pytest.raises(error_class) as official:
        await client.messages.create(model="m", max_tokens=10, messages=[{"role": "user", "content": "q"}],
                                     stream=True)
    await client.close()
    assert official.value.status_code == status
    assert official.value.body["error"] == {"type": error_type, "message": message}
    assert message in str(official.value)
    with pytest.raises(ProviderError) as mine:
        await ours(AnthropicProvider, fake_llm.url, fake_host)
    assert mine.value.reason == message and mine.value.status == status


OPENAI_ERRORS = [
    (401, openai.AuthenticationError),
    (429, openai.RateLimitError),
    (500, openai.InternalServerError),
    (400, openai.BadRequestError),
]


@pytest.mark.parametrize("status,error_class", OPENAI_ERRORS)
async def test_openai_client_raises_its_error_class(fake_llm, fake_host, status, error_class):
    message = f"fake says {status}"
    fake_llm.enqueue(Fail(status, message), Fail(status, message))
    client = openai.AsyncOpenAI(base_url=fake_llm.openai_url, api_key="x", max_retries=0)
    with pytest.raises(error_class) as official:
        await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "q"}], stream=True)
    await client.close()
    assert official.value.status_code == status
    assert str(official.value) == f"Error code: {status} - {message}"
    with pytest.raises(ProviderError) as mine:
        await ours(OpenAIProvider, fake_llm.openai_url, fake_host)
    assert mine.value.reason == message and mine.value.status == status


async def test_in_stream_errors_reach_the_official_clients(fake_llm):
    fake_llm.enqueue(InStreamError("Overloaded", text_chunks=["par"]), api="anthropic")
    fake_llm.enqueue(InStreamError("The server had an error"), api="openai")
    a = anthropic.AsyncAnthropic(base_url=fake_llm.url, api_key="x", max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as err:
        async for _ in await a.messages.create(model="m", max_tokens=10, stream=True,
                                               messages=[{"role": "user", "content": "q"}]):
            pass
    assert "overloaded_error" in str(err.value) and "Overloaded" in str(err.value)
    o = openai.AsyncOpenAI(base_url=fake_llm.openai_url, api_key="x", max_retries=0)
    with pytest.raises(openai.APIError, match="The server had an error"):
        async for _ in await o.chat.completions.create(model="m", stream=True,
                                                       messages=[{"role": "user", "content": "q"}]):
            pass
    await a.close()
    await o.close()


async def test_api_key_check_answers_like_the_real_apis():
    from tests.fakes.fixtures import start_fake_llm

    async with start_fake_llm(api_key="right-key") as server:
        a = anthropic.AsyncAnthropic(base_url=server.url, api_key="wrong-key", max_retries=0)
        with pytest.raises(anthropic.AuthenticationError, match="invalid x-api-key"):
            await a.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "q"}])
        o = openai.AsyncOpenAI(base_url=server.openai_url, api_key="sk-wrong-key-0000", max_retries=0)
        with pytest.raises(openai.AuthenticationError, match="Incorrect API key provided"):
            await o.chat.completions.create(model="m", messages=[{"role": "user", "content": "q"}])
        good = anthropic.AsyncAnthropic(base_url=server.url, api_key="right-key", max_retries=0)
        message = await good.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "q"}])
        assert message.content[0].text == "echo: q"
        for client in (a, o, good):
            await client.close()
