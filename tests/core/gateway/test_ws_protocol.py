"""SPEC §4 over a real socket: framing, the id "0" rule, every error text, the methods."""

from __future__ import annotations

import json

import pytest

from builtin_plugins.router import Binding
from exoclaw_core.config import GatewayConfig
from tests.harness import events_of, make_settings, running_gateway, text_of

CHAT = {"channel": "test", "account": "alice", "content": "hello there"}


async def test_hello_frame_carries_the_package_version(tmp_path):
    from exoclaw_core import __version__

    async with running_gateway(make_settings(data_dir=tmp_path)) as gw:
        async with gw.client() as c:
            assert c.hello == {"ok": True, "version": __version__}


async def test_ping_and_default_params(tmp_path):
    async with running_gateway(make_settings(data_dir=tmp_path)) as gw:
        async with gw.client() as c:
            assert await c.request("ping") == {"id": "r1", "result": "pong", "error": None}
            assert (await c.request("ping", {}))["result"] == "pong"


@pytest.mark.parametrize(
    "raw, error",
    [
        ("not json", "parse error: Expecting value"),
        ("[1, 2]", "parse error: expected a JSON object, got array"),
        ('"text"', "parse error: expected a JSON object, got string"),
        ("{\"method\": \"ping\"}", "id must be a string"),
        ('{"id": 5, "method": "ping"}', "id must be a string"),
        ('{"id": null, "method": "ping"}', "id must be a string"),
    ],
)
async def test_bad_frames_are_answered_with_id_zero(tmp_path, raw, error):
    async with running_gateway(make_settings(data_dir=tmp_path)) as gw:
        async with gw.client() as c:
            await c.send(raw)
            reply = await c.recv()
            assert reply["id"] == "0" and reply["result"] is None
            assert reply["error"] == error
            assert (await c.request("ping"))["result"] == "pong"  # still serving


async def test_unknown_method_and_invalid_params_texts(tmp_path):
    async with running_gateway(make_settings(data_dir=tmp_path)) as gw:
        async with gw.client() as c:
            await c.send({"id": "m", "method": 7})
            assert (await c.recv())["error"] == "unknown method: 7"
            r = await c.request("nope.nothing")
            assert r["error"] == "unknown method: nope.nothing" and r["result"] is None
            r = await c.request("ping", [1])
            assert r["error"] == "invalid params: params: must be an object, got array"
            r = await c.chat({"channel": "t", "account": "a"})
            assert r == [{"id": r[0]["id"], "result": None, "error": "invalid params: content: required"}]
            r = await c.chat({"channel": 3, "account": "a", "content": "x"})
            assert r[0]["error"] == "invalid params: channel: must be a string (got number)"
            r = await c.chat({"channel": "t", "account": "a", "content": "x", "guild": 7})
            assert r[0]["error"] == "invalid params: guild: must be a string (got number)"
            r = await c.request("chat.history", {})
            assert r["error"] == "invalid params: session: required"
            r = await c.request("session.list", {"limit": "ten"})
            assert r["error"] == "invalid params: limit: must be an integer (got string)"


async def test_chat_send_streams_text_usage_done(tmp_path):
    async with running_gateway(make_settings(data_dir=tmp_path)) as gw:
        async with gw.client() as c:
            frames = await c.chat(CHAT)
    events = events_of(frames)
    assert events[-1] == "done" and events.count("done") == 1
    assert events[-2] == "usage"
    assert set(events[:-2]) == {"text"} and len(events) > 3  # several chunks
    assert "You said: hello there" in text_of(frames)
    usage = frames[-2]["data"]
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0 and "cost_usd" in usage
    assert frames[-1] == {"id": frames[0]["id"], "event": "done"}


async def test_no_agent_is_a_plain_error(tmp_path):
    async with running_gateway(make_settings(data_dir=tmp_path), load_entrypoints=False) as gw:
        async with gw.client() as c:  # no router plugin loaded: nobody resolves the route
            frames = await c.chat({"channel": "tg", "account": "a:b", "content": "x", "peer": "p1"})
    assert frames[0]["error"] == "no agent configured for tg:a:b:p1"
    assert frames[0]["result"] is None and "event" not in frames[0]


async def test_status_session_list_and_history(tmp_path):
    async with running_gateway(make_settings(data_dir=tmp_path)) as gw:
        async with gw.client() as c:
            await c.chat(CHAT)
            await c.chat({**CHAT, "content": "second"})
            status = (await c.request("status"))["result"]
            assert status["sessions"] == 1 and status["plugins"] == 0
            assert status["version"] and status["agents"][0]["id"] == "default"
            assert any(h["name"] == "router" for h in status["hook_plugins"])
            sessions = (await c.request("session.list"))["result"]
            assert len(sessions) == 1
            s = sessions[0]
            assert s["key"] == "default:test:alice:main" and s["agent_id"] == "default"
            assert s["message_count"] == 4 and s["tokens"] > 0
            assert s["created_at"] <= s["updated_at"]
            history = (await c.request("chat.history", {"session": s["key"]}))["result"]
            assert [h["role"] for h in history] == ["user", "assistant", "user", "assistant"]
            assert history[0]["content"] == "hello there"
            assert "You said: second" in history[3]["content"]
            last = (await c.request("chat.history", {"session": s["key"], "limit": 1}))["result"]
            assert len(last) == 1 and last[0]["role"] == "assistant"


async def test_session_keys_escape_percent_and_colon(tmp_path):
    async with running_gateway(make_settings(data_dir=tmp_path)) as gw:
        async with gw.client() as c:
            await c.chat({"channel": "t", "account": "a:b", "content": "one"})
            await c.chat({"channel": "t", "account": "a%3Ab", "content": "two"})
            keys = sorted(s["key"] for s in (await c.request("session.list"))["result"])
    assert keys == ["default:t:a%253Ab:main", "default:t:a%3Ab:main"]


async def test_interleaved_requests_on_one_connection(tmp_path):
    settings = make_settings(data_dir=tmp_path, echo_delay=0.01)
    async with running_gateway(settings) as gw:
        async with gw.client() as c:
            for i in range(3):
                await c.send({"id": f"c{i}", "method": "chat.send",
                              "params": {"channel": "t", "account": f"user{i}", "content": f"message number {i}"}})
            await c.send({"id": "p", "method": "ping"})
            frames: dict[str, list] = {"c0": [], "c1": [], "c2": [], "p": []}
            order = []
            while not all(f and (f[-1].get("event") == "done" or k == "p") for k, f in frames.items()):
                frame = await c.recv()
                frames[frame["id"]].append(frame)
                order.append(frame["id"])
    assert frames["p"][0]["result"] == "pong"
    # the three streams interleave: a later id's frame arrives before an earlier one's done
    first_done = min(order.index(k) + len(frames[k]) for k in ("c0", "c1", "c2"))
    assert len(set(order[:first_done])) > 2
    for i in range(3):
        assert f"message number {i}" in text_of(frames[f"c{i}"])


async def test_max_message_bytes_answers_an_error_and_keeps_the_connection(tmp_path):
    settings = make_settings(data_dir=tmp_path, gateway=GatewayConfig(port=0, max_message_bytes=1000))
    async with running_gateway(settings) as gw:
        async with gw.client() as c:
            await c.send({"id": "big", "method": "ping", "params": {"x": "y" * 5000}})
            reply = await c.recv()
            assert reply["id"] == "0" and reply["error"] == "message too large: more than 1000 bytes"
            assert (await c.request("ping"))["result"] == "pong"


async def test_binary_frames_are_refused_politely(tmp_path):
    async with running_gateway(make_settings(data_dir=tmp_path)) as gw:
        async with gw.client() as c:
            await c.ws.send_bytes(b"\x00\x01")
            reply = await c.recv()
            assert reply["id"] == "0" and reply["error"].startswith("parse error:")
            assert (await c.request("ping"))["result"] == "pong"


async def test_bindings_route_to_a_second_agent(tmp_path):
    from exoclaw_hooks import AgentConfig

    work = AgentConfig(id="work", provider="echo", model="echo-work", options={"chunk_delay_s": 0})
    settings = make_settings(
        data_dir=tmp_path, agents=[work], bindings=(Binding(channel="test", peer_id="office", agent_id="work"),)
    )
    async with running_gateway(settings) as gw:
        async with gw.client() as c:
            await c.chat({**CHAT, "peer": "office"})
            await c.chat(CHAT)
            keys = sorted(s["key"] for s in (await c.request("session.list"))["result"])
            work_only = (await c.request("session.list", {"agent_id": "work"}))["result"]
    assert keys == ["default:test:alice:main", "work:test:alice:office"]
    assert [s["key"] for s in work_only] == ["work:test:alice:office"]


async def test_hostile_frames_leave_the_gateway_serving(tmp_path):
    import random

    rng = random.Random(1234)
    hostile = [
        "", "{", "}", "null", "true", "1e999999", '{"id": "' + "x" * 100_000 + '", "method": "ping"}',
        "[" * 5000 + "]" * 5000, '{"id": {"a": 1}}', '{"id": "1", "method": 7}', '{"id": "1", "method": null}',
        '{"id": "1", "method": "chat.send", "params": {"channel": [], "account": {}, "content": 1}}',
        '{"id": "1", "method": "chat.send", "params": "x"}', '{"id": "1", "method": "status", "params": [[[]]]}',
        '{"id": "1", "method": "chat.history", "params": {"session": 1}}',
        '{"id": "\\ud800", "method": "ping"}', '{"id": "1", "method": "session.list", "params": {"limit": -1}}',
    ]
    while len(hostile) < 200:
        kind = rng.randrange(3)
        if kind == 0:
            hostile.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))).decode("latin-1"))
        elif kind == 1:
            hostile.append(json.dumps({"id": str(rng.random()), "method": rng.choice(["chat.send", "x", "ping"]),
                                       "params": {"channel": rng.choice([None, 1, "c", [1]]), "content": rng.random()}}))
        else:
            hostile.append("{" * rng.randrange(1, 3000))
    async with running_gateway(make_settings(data_dir=tmp_path)) as gw:
        async with gw.client() as c:
            for frame in hostile:
                await c.send(frame)
            await c.send({"id": "final", "method": "ping"})
            while True:
                reply = await c.recv()
                assert "error" in reply or "event" in reply
                if reply.get("id") == "final":
                    assert reply["result"] == "pong"
                    break
        async with gw.client() as c2:  # a new connection works too
            assert (await c2.request("ping"))["result"] == "pong"
