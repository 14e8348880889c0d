"""``chat.cancel``, ``chat.send``'s ``agent``, and the upgrade's ``X-Exoclaw-Auth`` header."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from exoclaw_core.config import GatewayConfig
from exoclaw_hooks import AgentConfig
from tests.fakes.fixtures import start_fake_llm
from tests.fakes.llm_script import Reply
from tests.harness import events_of, make_settings, running_gateway, text_of

MSG = {"channel": "t", "account": "alice", "content": "one two three four five six seven eight nine ten"}


async def first_text(c, rid: str) -> dict:
    while True:
        frame = await c.recv()
        if frame.get("id") == rid:
            assert frame.get("event") == "text", frame
            return frame


async def wait_until(predicate, what: str) -> None:
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def test_cancel_ends_the_stream_with_error_and_done_and_stores_nothing(tmp_path):
    settings = make_settings(data_dir=tmp_path, echo_delay=0.05)
    async with running_gateway(settings) as gw:
        async with gw.client() as c:
            await c.send({"id": "t1", "method": "chat.send", "params": MSG})
            frames = [await first_text(c, "t1")]
            answer = await c.request("chat.cancel", {"id": "t1"})
            assert answer == {"id": answer["id"], "result": {"cancelled": True}, "error": None}
            frames += await c.collect("t1")
            assert events_of(frames)[-2:] == ["error", "done"]
            assert frames[-2]["data"] == "turn cancelled by the client"
            assert "usage" not in events_of(frames)
            assert (await c.request("session.list"))["result"] == []
            # the connection and the session go on
            again = await c.chat(MSG)
            assert events_of(again)[-2:] == ["usage", "done"]
            sessions = (await c.request("session.list"))["result"]
            assert [s["message_count"] for s in sessions] == [2]
        assert gw.rt.turns == set() and gw.rt.cancel_reasons == {}


@pytest.mark.parametrize("api", ["anthropic", "openai"])
async def test_cancel_closes_the_upstream_call(tmp_path, api):
    async with start_fake_llm() as server:
        server.enqueue(Reply(text_chunks=[f"chunk{i} " for i in range(200)], chunk_delay_s=0.05))
        agent = AgentConfig(id="default", provider=api, model="m", api_key="k", timeout_s=10,
                            base_url=server.url if api == "anthropic" else server.openai_url)
        async with running_gateway(make_settings(data_dir=tmp_path, agents=[agent])) as gw:
            async with gw.client() as c:
                await c.send({"id": "t1", "method": "chat.send", "params": MSG})
                await first_text(c, "t1")
                assert (await c.request("chat.cancel", {"id": "t1"}))["result"] == {"cancelled": True}
                frames = await c.collect("t1")
                assert events_of(frames)[-2:] == ["error", "done"]
                await wait_until(lambda: server.requests[0].disconnected, "the upstream request closed")
                assert (await c.request("session.list"))["result"] == []
                assert "chunk199" not in text_of(frames)


async def test_cancel_of_a_turn_waiting_in_its_lane(tmp_path):
    settings = make_settings(data_dir=tmp_path, echo_delay=0.05)
    async with running_gateway(settings) as gw:
        async with gw.client() as c:
            await c.send({"id": "a", "method": "chat.send", "params": MSG})
            await c.send({"id": "b", "method": "chat.send", "params": {**MSG, "content": "queued behind a"}})
            await first_text(c, "a")
            assert (await c.request("chat.cancel", {"id": "b"}))["result"] == {"cancelled": True}
            b = await c.collect("b")
            a = await c.collect("a")
            assert events_of(b) == ["error", "done"] and events_of(a)[-2:] == ["usage", "done"]
            key = (await c.request("session.list"))["result"][0]["key"]
            history = (await c.request("chat.history", {"session": key}))["result"]
            assert [m["content"] for m in history if m["role"] == "user"] == [MSG["content"]]


async def test_cancel_answers_false_when_there_is_nothing_to_cancel(tmp_path):
    settings = make_settings(data_dir=tmp_path, echo_delay=0.05)
    async with running_gateway(settings) as gw:
        async with gw.client() as c, gw.client() as other:
            done = await c.chat(MSG)
            assert events_of(done)[-1] == "done"
            assert (await c.request("chat.cancel", {"id": done[0]["id"]}))["result"] == {"cancelled": False}
            assert (await c.request("chat.cancel", {"id": "never-sent"}))["result"] == {"cancelled": False}
            bad = await c.request("chat.cancel", {"id": 7})
            assert bad["error"] == "invalid params: id: must be the id of a chat.send request (a string)"
            missing = await c.request("chat.cancel")
            assert missing["error"].startswith("invalid params: id:")
            # another connection's turn is not ours to cancel
            await c.send({"id": "mine", "method": "chat.send", "params": MSG})
            await first_text(c, "mine")
            assert (await other.request("chat.cancel", {"id": "mine"}))["result"] == {"cancelled": False}
            frames = await c.collect("mine")
            assert events_of(frames)[-2:] == ["usage", "done"]


async def test_a_client_that_closes_mid_turn_still_gets_its_turn_stored(tmp_path):
    settings = make_settings(data_dir=tmp_path, echo_delay=0.05)
    async with running_gateway(settings) as gw:
        async with gw.client() as c:
            await c.send({"id": "t1", "method": "chat.send", "params": MSG})
            await first_text(c, "t1")
        await wait_until(lambda: not gw.rt.turns, "the turn finished")
        await gw.rt.settled()
        sessions = await gw.rt.store.list_sessions()
        assert [s.message_count for s in sessions] == [2]


async def test_chat_send_agent_chooses_the_agent_and_its_session(tmp_path):
    work = AgentConfig(id="work", provider="echo", model="echo")
    settings = make_settings(data_dir=tmp_path, agents=[work])
    async with running_gateway(settings) as gw:
        async with gw.client() as c:
            frames = await c.chat({**MSG, "agent": "work"})
            assert events_of(frames)[-1] == "done"
            keys = [s["key"] for s in (await c.request("session.list"))["result"]]
            assert keys == ["work:t:alice:main"]
            bad = await c.chat({**MSG, "agent": "wrok"})
            assert bad == [{"id": bad[0]["id"], "result": None,
                            "error": "invalid params: agent: unknown agent, must be one of default, work"}]


@pytest.mark.parametrize("token", [None, "a-token-of-sufficient-length"])
async def test_the_upgrade_says_whether_a_token_is_required(tmp_path, token):
    settings = make_settings(data_dir=tmp_path, gateway=GatewayConfig(port=0, token=token))
    async with running_gateway(settings) as gw:
        async with aiohttp.ClientSession() as session:
            async with session.get(gw.http_url + "/ws", headers={
                "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            }) as resp:
                assert resp.status == 101
                assert resp.headers["X-Exoclaw-Auth"] == ("token" if token else "none")
