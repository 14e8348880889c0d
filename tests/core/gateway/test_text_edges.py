"""Text at the edges (issue 16): every client string is proper Unicode before anything runs.

A lone surrogate (JSON ``"\\ud800"``, or header bytes that are not UTF-8) in
any field of a frame, an OpenAI request or a channel plugin's parsed message,
or a NUL in text that becomes a turn, is answered with a clear error, and no
upstream call is made; what clients send that does reach a log line arrives
there escaped.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from exoclaw_core.config import GatewayConfig
from exoclaw_hooks import AgentConfig
from tests.core.gateway.test_webhook import ChatChannel, post
from tests.fakes.fixtures import start_fake_llm
from tests.harness import captured_log, make_settings, running_gateway, text_of

CHAT = {"channel": "test", "account": "alice", "content": "hello", "peer": "main"}


def paid_agent(server) -> AgentConfig:
    return AgentConfig(id="default", provider="anthropic", model="claude-x", base_url=server.url,
                       api_key="sk-test-text-edges-0123456789", timeout_s=5)


@pytest.mark.parametrize("field, value, problem", [
    ("account", "\ud800", "must be valid Unicode text (lone surrogate U+D800 at character 0)"),
    ("peer", "ok\udfff", "must be valid Unicode text (lone surrogate U+DFFF at character 2)"),
    ("channel", "a\x00b", "must not contain NUL characters (at character 1)"),
    ("content", "half an emoji \ud83d!", "must be valid Unicode text (lone surrogate U+D83D at character 14)"),
    ("guild", "\udc80", "must be valid Unicode text (lone surrogate U+DC80 at character 0)"),
])
async def test_chat_send_refuses_bad_text_before_any_upstream_call(tmp_path, field, value, problem):
    async with start_fake_llm() as server:
        async with running_gateway(make_settings(data_dir=tmp_path, agents=[paid_agent(server)])) as gw:
            async with gw.client() as c:
                frames = await c.chat({**CHAT, field: value})
                assert frames == [{"id": frames[0]["id"], "result": None,
                                   "error": f"invalid params: {field}: {problem}"}]
                assert server.requests == []  # nothing paid, nothing half-stored
                assert (await c.request("session.list"))["result"] == []
                ok = await c.chat({**CHAT, "content": "a real emoji 😀 \U0001F600"})
    assert text_of(ok).startswith("echo: a real emoji 😀 😀") and len(server.requests) == 1


async def test_every_method_and_the_frame_itself_are_checked(tmp_path):
    async with running_gateway(make_settings(data_dir=tmp_path)) as gw:
        async with gw.client() as c:
            r = await c.request("chat.history", {"session": "x\ud800"})
            assert r["error"] == "invalid params: session: must be valid Unicode text (lone surrogate U+D800 at character 1)"
            r = await c.request("session.list", {"agent_id": "a", "filter": {"deep": ["ok", "\udc80"]}})
            assert r["error"] == ("invalid params: filter.deep[1]: must be valid Unicode text "
                                  "(lone surrogate U+DC80 at character 0)")
            r = await c.request("memory.search", {"query": "NUL \x00 is just a character in a query"})
            assert r["error"] is None
            r = await c.request("ping", {"\ud800key": 1})
            assert r["error"].startswith("invalid params: params: a member name must be valid Unicode text")
            await c.send('{"id": "m", "method": "pi\\udc00ng"}')
            r = await c.recv()
            assert r == {"id": "m", "result": None,
                         "error": "parse error: method must be valid Unicode text (lone surrogate U+DC00 at character 2)"}
            await c.send('{"id": "\\ud800", "method": "ping"}')
            r = await c.recv()
            assert r["id"] == "0" and r["error"].startswith("parse error: id must be valid Unicode text")
            await c.send('{"id": "esc", "method": "ping", "params": {"x": "\\u001b[31m and \\ud83d\\ude00"}}')
            assert (await c.recv())["result"] == "pong"  # escaped ESC and a proper pair are fine


async def test_openai_body_and_peer_header_are_checked_before_any_upstream_call(tmp_path):
    async with start_fake_llm() as server:
        async with running_gateway(make_settings(data_dir=tmp_path, agents=[paid_agent(server)])) as gw:
            url = gw.http_url + "/v1/chat/completions"
            async with aiohttp.ClientSession() as s:
                for body, param in [
                    ({"model": "exoclaw", "user": "\ud800", "messages": [{"role": "user", "content": "hi"}]}, "user"),
                    ({"model": "exoclaw", "messages": [{"role": "system", "content": "x\x00"},
                                                       {"role": "user", "content": "hi"}]}, "messages[0].content"),
                    ({"model": "exoclaw", "messages": [{"role": "user", "content": [
                        {"type": "text", "text": "\udfff"}]}]}, "messages[0].content[0].text"),
                ]:
                    async with s.post(url, data=json.dumps(body), headers={"Content-Type": "application/json"}) as r:
                        assert r.status == 400
                        err = (await r.json())["error"]
                        assert err["param"] == param and err["code"] == "invalid_value"
                        assert err["message"].startswith(f"Invalid '{param}': must ")
            status, answer = await _raw_post(gw, b"X-Exoclaw-Peer: caf\xe9\r\n")  # Latin-1, not UTF-8
            assert status == 400 and "Invalid X-Exoclaw-Peer header: must be valid Unicode text" in answer
            status, answer = await _raw_post(gw, "X-Exoclaw-Peer: café\r\n".encode())
            assert status == 200, answer
    assert len(server.requests) == 1 and server.requests[0].json["messages"][-1]["content"] == "hi"


async def _raw_post(gw, extra_headers: bytes) -> tuple[int, str]:
    """A request written byte by byte (no client library would send a header that is not UTF-8)."""
    body = json.dumps({"model": "exoclaw", "messages": [{"role": "user", "content": "hi"}]}).encode()
    port = int(gw.http_url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Connection: close\r\n" + extra_headers + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    raw = await reader.read()
    writer.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), payload.decode("utf-8", "replace")


async def test_a_bad_token_of_any_shape_is_a_failed_login_not_a_crash(tmp_path):
    token = "a-long-enough-token-0123456789"
    settings = make_settings(data_dir=tmp_path, gateway=GatewayConfig(port=0, token=token))
    async with running_gateway(settings) as gw:
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(gw.url) as ws:
                await ws.send_str('{"token": "\\ud800"}')
                assert json.loads((await ws.receive()).data)["error"] == "auth_failed"
            port = int(gw.http_url.rsplit(":", 1)[1])
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\nConnection: close\r\n\r\n")
            raw = await reader.read()
            writer.close()
            assert raw.startswith(b"HTTP/1.1 401 ")
            async with gw.client(token=token) as c:
                assert (await c.request("ping"))["result"] == "pong"


async def test_a_channel_plugins_parsed_message_is_checked_before_the_inbox(tmp_path):
    chan = ChatChannel(port=9)  # never replies: nothing may reach the inbox
    async with running_gateway(make_settings(data_dir=tmp_path), plugins=[("chan", chan)]) as gw:
        status, body = await post(gw, "chat", {"user": "u\ud800", "text": "hi", "id": "m1"})
        assert status == 400 and body == {
            "ok": False, "error": "the parsed message's account must be valid Unicode text "
                                  "(lone surrogate U+D800 at character 1)"}
        status, body = await post(gw, "chat", {"user": "u", "room": "r\x00", "text": "hi", "id": "m2"})
        assert status == 400 and body["error"].startswith("the parsed message's peer must not contain NUL")
        assert not any((await gw.rt.store.inbox_counts()).values())
        assert chan.parsed == 2


async def test_control_characters_from_clients_reach_the_log_escaped(tmp_path):
    with captured_log() as stream:
        async with running_gateway(make_settings(data_dir=tmp_path)) as gw:
            async with gw.client() as c:
                frames = await c.chat({**CHAT, "channel": "c\x1b[2J", "peer": "p\r\nlevel=error forged"})
                assert frames[-1]["event"] == "done"
                await c.request("no\x1b]0;title\x07such.method")
    out = stream.getvalue()
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out
    assert not any(line.startswith("level=error forged") or " level=error forged" in line.split(" rid=")[0]
                   for line in out.splitlines())
    assert "c\\x1b[2J" in out or "c\\u001b[2J" in out  # the session key, escaped, in the turn's lines
