"""The OpenAI-compatible face (SPEC §4) with the official ``openai`` client against a real gateway.

Completions streamed and not, the usage chunk, ``models.list()``, identity
and sessions, shared memory between requests of one ``user``, FIFO within a
session, the per-turn system message, and a client that leaves mid-stream.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import time

import aiohttp
import openai
import pytest

from exoclaw_hooks import AgentConfig, hookimpl
from builtin_plugins.router import Binding
from exoclaw_hooks.testing import Script, ScriptedProvider
from tests.harness import make_settings, running_gateway


class Scripted:
    """A test plugin registering a scripted provider as ``scripted``."""

    def __init__(self, provider: ScriptedProvider):
        self.provider = provider

    @hookimpl
    def register_providers(self, register):
        register("scripted", self.provider.factory)


def client(gw, api_key: str = "x") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.http_url + "/v1", api_key=api_key, max_retries=0)


def memory_plugin_present() -> bool:
    try:
        return importlib.util.find_spec("builtin_plugins.memory.episodic") is not None
    except ImportError:
        return False


async def history(gw, session: str) -> list[dict]:
    async with gw.client() as c:
        return (await c.request("chat.history", {"session": session}))["result"]


async def settle(gw, timeout: float = 5.0) -> None:
    """Wait until no turn is in flight (after_turn included)."""
    deadline = time.monotonic() + timeout
    while gw.rt.turns and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


async def test_streaming_completion_is_what_the_sdk_expects(tmp_path):
    async with running_gateway(make_settings(data_dir=tmp_path)) as gw:
        async with client(gw) as oa:
            stream = await oa.chat.completions.create(
                model="exoclaw", messages=[{"role": "user", "content": "hello streaming world"}], stream=True,
            )
            chunks = [c async for c in stream]
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")
    assert all(c.object == "chat.completion.chunk" and c.model == "exoclaw" for c in chunks)
    assert all(isinstance(c.created, int) and c.usage is None for c in chunks)
    first, last = chunks[0].choices[0], chunks[-1].choices[0]
    assert first.delta.role == "assistant" and first.delta.content == "" and first.finish_reason is None
    assert last.finish_reason == "stop" and last.delta.content is None
    middle = [c.choices[0] for c in chunks[1:-1]]
    assert len(middle) > 2 and all(ch.finish_reason is None for ch in middle)  # the echo's chunks, one by one
    text = "".join(ch.delta.content for ch in middle)
    assert text.startswith("You said: hello streaming world\n\n[echo: 1 message")


async def test_stream_options_include_usage_adds_the_usage_only_chunk(tmp_path):
    async with running_gateway(make_settings(data_dir=tmp_path)) as gw:
        async with client(gw) as oa:
            stream = await oa.chat.completions.create(
                model="default", messages=[{"role": "user", "content": "count me"}], stream=True,
                stream_options={"include_usage": True},
            )
            chunks = [c async for c in stream]
    *body, usage_chunk = chunks
    assert usage_chunk.choices == []
    u = usage_chunk.usage
    assert u.prompt_tokens > 0 and u.completion_tokens > 0 and u.total_tokens == u.prompt_tokens + u.completion_tokens
    assert all(c.usage is None for c in body) and body[-1].choices[0].finish_reason == "stop"
    assert usage_chunk.model == "default"
    # the extension member: the turn's cost and the context's composition in tokens by section (SPEC §9)
    extra = u.model_extra["exoclaw"]
    assert extra["cost_usd"] == 0.0 and extra["context"]["message"] > 0


async def test_non_streaming_completion(tmp_path):
    async with running_gateway(make_settings(data_dir=tmp_path)) as gw:
        async with client(gw) as oa:
            r = await oa.chat.completions.create(model="exoclaw", messages=[{"role": "user", "content": "hi there"}])
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-") and r.model == "exoclaw"
    choice = r.choices[0]
    assert choice.index == 0 and choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert choice.message.content.startswith("You said: hi there\n\n[echo: 1 message")
    assert choice.message.tool_calls is None
    assert r.usage.prompt_tokens > 0 and r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


async def test_raw_sse_bytes(tmp_path):
    """The stream on the wire: SSE headers, ``data: {...}`` events, ``data: [DONE]`` last."""
    async with running_gateway(make_settings(data_dir=tmp_path)) as gw:
        async with aiohttp.ClientSession() as s:
            async with s.post(gw.http_url + "/v1/chat/completions", json={
                "model": "exoclaw", "stream": True, "messages": [{"role": "user", "content": "raw"}],
            }) as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"] == "text/event-stream; charset=utf-8"
                raw = (await resp.read()).decode()
    events = raw.split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    assert all(e.startswith("data: {") for e in events[:-2])
    first = json.loads(events[0][6:])
    assert first["system_fingerprint"] is None and "usage" not in first
    assert first["choices"] == [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                 "logprobs": None, "finish_reason": None}]


async def test_models_list_has_every_agent_and_exoclaw(tmp_path):
    work = AgentConfig(id="work", provider="echo", model="echo")
    async with running_gateway(make_settings(data_dir=tmp_path, agents=[work])) as gw:
        async with client(gw) as oa:
            models = await oa.models.list()
    ids = [m.id for m in models.data]
    assert ids == ["exoclaw", "default", "work"]
    assert all(m.object == "model" and m.owned_by == "exoclaw" and isinstance(m.created, int) for m in models.data)


async def test_identity_user_peer_and_model_choose_the_session(tmp_path):
    work = AgentConfig(id="work", provider="echo", model="echo", options={"chunk_delay_s": 0})
    bound = AgentConfig(id="bound", provider="echo", model="echo", options={"chunk_delay_s": 0})
    settings = make_settings(data_dir=tmp_path, agents=[work, bound],
                             bindings=(Binding(channel="openai", account_id="carol", agent_id="bound"),))
    async with running_gateway(settings) as gw:
        async with client(gw) as oa:
            msgs = [{"role": "user", "content": "hi"}]
            await oa.chat.completions.create(model="exoclaw", messages=msgs)
            await oa.chat.completions.create(model="exoclaw", messages=msgs, user="a:b%c",
                                             extra_headers={"X-Exoclaw-Peer": "phone"})
            await oa.chat.completions.create(model="work", messages=msgs, user="dave")
            await oa.chat.completions.create(model="exoclaw", messages=msgs, user="carol")  # bindings apply
            await oa.chat.completions.create(model="work", messages=msgs, user="carol")  # an agent id wins
        async with gw.client() as c:
            keys = sorted(s["key"] for s in (await c.request("session.list"))["result"])
    assert keys == ["bound:openai:carol:main", "default:openai:a%3Ab%25c:phone", "default:openai:api:main",
                    "work:openai:carol:main", "work:openai:dave:main"]


async def test_two_requests_of_one_user_share_the_session(tmp_path):
    provider = ScriptedProvider()
    provider.enqueue(Script(text=["Nice to meet you, Ada."]), Script(text=["You are Ada."]))
    settings = make_settings(data_dir=tmp_path, provider="scripted", model="m1")
    async with running_gateway(settings, plugins=[("scripted", Scripted(provider))]) as gw:
        async with client(gw) as oa:
            await oa.chat.completions.create(model="exoclaw", user="ada",
                                             messages=[{"role": "user", "content": "My name is Ada."}])
            await settle(gw)
            # the client resends its history: Exoclaw ignores it and uses its own
            await oa.chat.completions.create(model="exoclaw", user="ada", messages=[
                {"role": "user", "content": "IGNORED earlier message"},
                {"role": "assistant", "content": "IGNORED earlier reply"},
                {"role": "user", "content": "What is my name?"},
            ])
        stored = await history(gw, "default:openai:ada:main")
    assert [(m["role"], m["content"]) for m in stored] == [
        ("user", "My name is Ada."), ("assistant", "Nice to meet you, Ada."),
        ("user", "What is my name?"), ("assistant", "You are Ada."),
    ]
    second = [(m.role, m.content) for m in provider.history[1].messages]
    assert all("IGNORED" not in c for _, c in second)
    assert second[-1] == ("user", "What is my name?")
    if memory_plugin_present():  # the episodic layer replays the first exchange
        assert second[:2] == [("user", "My name is Ada."), ("assistant", "Nice to meet you, Ada.")]


async def test_concurrent_requests_of_one_session_stay_fifo(tmp_path):
    provider = ScriptedProvider()
    gate = asyncio.Event()  # the first turn holds the session's lane until all five are queued
    provider.enqueue(Script(text=["reply ", "0"], gate=gate),
                     *[Script(text=["reply ", str(i)], delay_s=0.005) for i in range(1, 5)])
    settings = make_settings(data_dir=tmp_path, provider="scripted", model="m1")
    key = "default:openai:fifo:main"
    async with running_gateway(settings, plugins=[("scripted", Scripted(provider))]) as gw:
        async with client(gw) as oa:
            async def ask(i: int) -> str:
                stream = await oa.chat.completions.create(
                    model="exoclaw", user="fifo", stream=True, messages=[{"role": "user", "content": f"turn {i}"}])
                return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

            tasks = []
            for i in range(5):
                tasks.append(asyncio.create_task(ask(i)))
                # the next request is sent once this one holds its place in the session's lane
                while gw.rt.lanes.waiting(key) < i + 1:
                    await asyncio.sleep(0.001)
            gate.set()
            replies = await asyncio.gather(*tasks)
        stored = await history(gw, key)
    assert replies == [f"reply {i}" for i in range(5)]  # each client got the answer to its own turn
    assert [r.messages[-1].content for r in provider.history] == [f"turn {i}" for i in range(5)]
    assert [(m["role"], m["content"]) for m in stored] == [
        pair for i in range(5) for pair in (("user", f"turn {i}"), ("assistant", f"reply {i}"))]


async def test_system_and_developer_messages_reach_the_system_prompt(tmp_path):
    provider = ScriptedProvider()
    agent_system = AgentConfig(id="default", provider="scripted", model="m1", system_prompt="You are Exo.")
    settings = make_settings(data_dir=tmp_path, agents=[agent_system])  # replaces the default agent
    async with running_gateway(settings, plugins=[("scripted", Scripted(provider))]) as gw:
        async with client(gw) as oa:
            await oa.chat.completions.create(model="exoclaw", messages=[
                {"role": "system", "content": "Answer in French."},
                {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
                {"role": "user", "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": "there"}]},
            ])
            await oa.chat.completions.create(model="exoclaw", messages=[{"role": "user", "content": "again"}])
    system = provider.history[0].system
    assert system.startswith("You are Exo.") and system.endswith("Answer in French.\n\nBe brief.")
    assert provider.history[0].messages[-1].content == "Hello\nthere"
    assert "French" not in provider.history[1].system  # for that turn only


async def test_tools_run_inside_and_never_reach_the_client_as_tool_calls(tmp_path):
    async with running_gateway(make_settings(data_dir=tmp_path)) as gw:
        async with client(gw) as oa:
            stream = await oa.chat.completions.create(
                model="exoclaw", stream=True, messages=[{"role": "user", "content": "/tool no_such_tool {}"}])
            chunks = [c async for c in stream]
    assert all(c.choices[0].delta.tool_calls is None for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text.startswith("Calling no_such_tool.\nTool no_such_tool failed: unknown tool: no_such_tool")
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_a_client_leaving_mid_stream_does_not_cancel_the_turn(tmp_path):
    provider = ScriptedProvider()
    provider.enqueue(Script(text=["first ", "second ", "third"], delay_s=0.05))
    settings = make_settings(data_dir=tmp_path, provider="scripted", model="m1")
    async with running_gateway(settings, plugins=[("scripted", Scripted(provider))]) as gw:
        async with aiohttp.ClientSession() as s:
            resp = await s.post(gw.http_url + "/v1/chat/completions", json={
                "model": "exoclaw", "stream": True, "user": "leaver",
                "messages": [{"role": "user", "content": "long answer please"}],
            })
            assert resp.status == 200
            line = await resp.content.readline()
            assert line.startswith(b"data: {")
            resp.close()  # gone, mid-stream
            assert gw.rt.turns, "the turn should still be running"
        await asyncio.sleep(0.01)
        await settle(gw)
        stored = await history(gw, "default:openai:leaver:main")
    assert [(m["role"], m["content"]) for m in stored] == [
        ("user", "long answer please"), ("assistant", "first second third")]


@pytest.mark.parametrize("stream", [False, True])
async def test_turn_metrics_count_openai_turns(tmp_path, stream):
    async with running_gateway(make_settings(data_dir=tmp_path)) as gw:
        async with client(gw) as oa:
            r = await oa.chat.completions.create(model="exoclaw", stream=stream,
                                                 messages=[{"role": "user", "content": "x"}])
            if stream:
                [c async for c in r]
        await settle(gw)
        async with aiohttp.ClientSession() as s:
            metrics = await (await s.get(gw.http_url + "/metrics")).text()
    assert 'exoclaw_turns_total{agent="default",outcome="ok"} 1.0' in metrics
