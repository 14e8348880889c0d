"""Every turn ends: a call's first-byte and whole-call deadlines, the turn's deadline (issue 16).

A real provider plugin against the fake LLM server that pings forever, trickles
bytes, or streams slowly: the turn ends at the deadline with a clear error, the
upstream request is closed, the session's next turn runs.
"""

from __future__ import annotations

import time

import pytest

from exoclaw_hooks import AgentConfig
from tests.fakes.fixtures import start_fake_llm
from tests.fakes.llm_script import Fail, Raw, Reply
from tests.harness import events_of, make_settings, running_gateway, text_of

PING = b'event: ping\ndata: {"type": "ping"}\n\n'
MSG = {"channel": "t", "account": "alice", "content": "hi"}


def agent(server, **kw) -> AgentConfig:
    return AgentConfig(id="default", provider="anthropic", model="claude-x", base_url=server.url, api_key="k",
                       timeout_s=5, **kw)


async def turn_then_next(server, script, **deadlines) -> tuple[list, float, list]:
    server.enqueue(script, Reply(text_chunks=["next turn ok"]))
    async with running_gateway(make_settings(agents=[agent(server, **deadlines)])) as gw:
        async with gw.client() as c:
            t0 = time.monotonic()
            first = await c.chat(MSG)
            took = time.monotonic() - t0
            second = await c.chat(MSG)
    return first, took, second


async def test_an_upstream_that_only_pings_is_cut_at_the_first_byte_deadline():
    async with start_fake_llm() as server:
        first, took, second = await turn_then_next(
            server, Raw([PING] * 400, chunk_delay_s=0.05), first_byte_timeout_s=0.5, call_timeout_s=30)
    assert events_of(first) == ["error", "done"]
    assert first[0]["data"] == "provider error: timeout: no output within 0.5 s (first_byte_timeout_s)"
    assert took < 3  # the deadline, not the 20 s of pings
    assert server.requests[0].disconnected  # the upstream request was closed
    assert text_of(second) == "next turn ok"  # the lane was released


async def test_a_trickling_stream_is_cut_at_the_call_deadline_after_its_text():
    async with start_fake_llm() as server:
        slow = Reply(text_chunks=[f"w{i} " for i in range(200)], chunk_delay_s=0.05)
        first, took, second = await turn_then_next(server, slow, first_byte_timeout_s=5, call_timeout_s=0.6)
    assert events_of(first)[-2:] == ["error", "done"] and "text" in events_of(first)
    assert first[-2]["data"] == "provider error: timeout: the call took longer than 0.6 s (call_timeout_s)"
    assert took < 3 and server.requests[0].disconnected
    assert text_of(second) == "next turn ok"


async def test_bytes_that_never_make_an_event_are_cut_too():
    async with start_fake_llm() as server:
        first, took, _ = await turn_then_next(
            server, Raw([b"e"] * 400, chunk_delay_s=0.05), first_byte_timeout_s=0.4, call_timeout_s=30)
    assert first[0]["data"].startswith("provider error: timeout: no output within 0.4 s")
    assert took < 3


async def test_the_turn_deadline_covers_the_tool_loop_and_ends_the_turn():
    async with start_fake_llm() as server:
        tool = Reply(text_chunks=["calling"], tool_calls=[("nope", {})], chunk_delay_s=0.2)
        server.enqueue(*([tool] * 20))
        settings = make_settings(agents=[agent(server, turn_timeout_s=1.0, max_tool_iterations=50)])
        async with running_gateway(settings) as gw:
            async with gw.client() as c:
                t0 = time.monotonic()
                frames = await c.chat(MSG)
                took = time.monotonic() - t0
            history = await gw.request("chat.history", {"session": "default:t:alice:main"})
    assert frames[-2] == {"id": frames[-2]["id"], "event": "error",
                          "data": "turn stopped: it took longer than its deadline of 1 s (turn_timeout_s)"}
    assert 0.9 < took < 3
    assert history == []  # a failed turn stores nothing


async def test_retries_wait_only_within_the_turn_deadline():
    async with start_fake_llm() as server:
        server.enqueue(Fail(status=429, message="slow down", headers={"retry-after": "20"}))
        settings = make_settings(agents=[agent(server, turn_timeout_s=2.0)])
        async with running_gateway(settings) as gw:
            async with gw.client() as c:
                t0 = time.monotonic()
                frames = await c.chat(MSG)
                took = time.monotonic() - t0
    assert frames[-2]["event"] == "error" and "slow down" in frames[-2]["data"]
    assert took < 1.5  # no 20 s wait: it could not end before the deadline anyway
    assert len(server.requests) == 1


@pytest.mark.parametrize("key,value", [("first_byte_timeout_s", 0), ("call_timeout_s", -1), ("turn_timeout_s", "x")])
def test_deadlines_are_validated(key, value):
    from exoclaw_hooks import ConfigError
    from tests.harness import parse_settings

    with pytest.raises(ConfigError, match=rf"\[agent\] {key}: must be a positive number"):
        parse_settings(f"[agent]\n{key} = {value!r}\n".replace("'", '"'))
