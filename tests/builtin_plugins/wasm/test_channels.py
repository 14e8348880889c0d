"""Channel hooks of the ``wasm`` plugin, called directly, with the real mock and telegram modules."""

from __future__ import annotations

import inspect
import json
import logging
from typing import Any

import pytest

from builtin_plugins.wasm import bridge, channels
from builtin_plugins.wasm.plugin import WasmPlugin
from exoclaw_hooks import ChannelError, Ignore, IncomingMessage, OutgoingReply, OutgoingRequest, WebhookRequest
from builtin_plugins.wasm.settings import WasmPluginConfig
from exoclaw_hooks.testing import FakeHost, tables_of

SECRET = "s3cret-webhook-value"
TOKEN = "123456:bot-token-value"
HEADER = "X-Telegram-Bot-Api-Secret-Token"


def update(text: str | None = "hello bot", chat_id: int = -1001234567890, from_id: int = 42, update_id: int = 9001) -> bytes:
    message: dict[str, Any] = {"message_id": 1, "from": {"id": from_id}, "chat": {"id": chat_id, "type": "group"}}
    if text is not None:
        message["text"] = text
    return json.dumps({"update_id": update_id, "message": message}).encode()


@pytest.fixture
async def wasm(wasm_build, monkeypatch):
    monkeypatch.setenv("TG_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("TG_BOT_TOKEN", TOKEN)
    configs = (
        WasmPluginConfig(
            name="telegram", path=str(wasm_build["telegram"]), capabilities=("http:127.0.0.1",),
            secrets={"bot_token": "TG_BOT_TOKEN", "webhook_secret": "TG_WEBHOOK_SECRET"},
            config={"api_base": "http://127.0.0.1:8081/"},
        ),
        WasmPluginConfig(name="tg-unset", path=str(wasm_build["telegram"]),
                         secrets={"webhook_secret": "TG_NOT_SET_ANYWHERE"}),
        WasmPluginConfig(name="mock", path=str(wasm_build["mock"]), config={"reply_url": "http://127.0.0.1:9/reply"}),
        WasmPluginConfig(name="mock-noreply", path=str(wasm_build["mock"])),
        WasmPluginConfig(name="echo", path=str(wasm_build["echo"])),
    )
    plugin = WasmPlugin()
    tables_of(plugin)["plugins"].apply(configs)
    host = FakeHost()
    await plugin.gateway_startup(host)
    try:
        yield plugin
    finally:
        await plugin.gateway_shutdown(host)


@pytest.fixture
def wasm_calls(monkeypatch) -> list[tuple[str, Any]]:
    """Every WASM channel call (export, decoded input), still made for real."""
    calls: list[tuple[str, Any]] = []
    real = channels.call_export

    def spy(plugin, export, payload, *args):
        calls.append((export, json.loads(payload)))
        return real(plugin, export, payload, *args)

    monkeypatch.setattr(channels, "call_export", spy)
    return calls


async def parse(plugin: WasmPlugin, channel: str, body: bytes, headers: dict[str, str] | None = None) -> Any:
    result = plugin.parse_incoming(WebhookRequest(channel=channel, headers=headers or {}, body=body))
    assert inspect.isawaitable(result)
    return await result


# ---------------------------------------------------------------- parse_incoming


async def test_not_ours_is_passed_on(wasm):
    for channel in ("nope", "echo"):  # unknown, and a TOOL plugin of that name: the core answers 404
        assert wasm.parse_incoming(WebhookRequest(channel=channel, headers={}, body=b"{}")) is None
        assert wasm.format_outgoing(OutgoingReply(channel=channel, reply_to={}, content="x")) is None
    assert not inspect.iscoroutinefunction(WasmPlugin.parse_incoming)
    assert not inspect.iscoroutinefunction(WasmPlugin.format_outgoing)
    assert not inspect.iscoroutinefunction(WasmPlugin.dispatch_tool)


@pytest.mark.parametrize("headers", [{}, {HEADER: "wrong"}, {HEADER: ""}, {HEADER: SECRET + "x"}, {"X-Other": SECRET}])
async def test_verify_fails_with_401_before_the_wasm_runs(wasm, wasm_calls, headers):
    with pytest.raises(ChannelError) as err:
        # raised by the hook itself: nothing is scheduled, the WASM never sees the payload
        wasm.parse_incoming(WebhookRequest(channel="telegram", headers=headers, body=update()))
    assert err.value.status == 401 and err.value.reason == "authenticity check failed"
    assert SECRET not in str(err.value)
    assert wasm_calls == []


async def test_verified_update_becomes_a_message(wasm, wasm_calls):
    msg = await parse(wasm, "telegram", update(), {HEADER.lower(): SECRET, "Content-Type": "application/json"})
    assert msg == IncomingMessage(
        channel="telegram", account="42", content="hello bot", peer="-1001234567890",
        message_id="9001", reply_to={"chat_id": -1001234567890},
    )
    (export, sent), = wasm_calls
    assert export == "parse_incoming"
    assert sent["headers"] == {"content-type": "application/json"}  # lower-cased, secret header removed
    assert json.loads(sent["body"])["update_id"] == 9001  # the raw body, as text


async def test_update_without_text_is_ignored(wasm):
    assert isinstance(await parse(wasm, "telegram", update(text=None), {HEADER: SECRET}), Ignore)


@pytest.mark.parametrize("body, reason", [
    (b"<html>not json</html>", "body is not a JSON object"),
    (b'{"message": {"text": "hi"}}', "missing field: update_id"),
    (b'{"update_id": 1, "message": {"text": "hi"}}', "missing field: message.chat.id"),
])
async def test_payload_the_plugin_rejects_is_a_400_with_its_reason(wasm, body, reason):
    with pytest.raises(ChannelError) as err:
        await parse(wasm, "telegram", body, {HEADER: SECRET})
    assert err.value.status == 400 and err.value.reason == reason


async def test_missing_secret_env_var_loads_but_always_refuses(wasm, caplog, wasm_build, monkeypatch):
    report = {p["name"]: p for p in wasm.plugin_report(None)}
    assert report["tg-unset"]["loaded"] is True
    for headers in ({}, {HEADER: ""}, {HEADER: "anything"}):
        with pytest.raises(ChannelError) as err:
            wasm.parse_incoming(WebhookRequest(channel="tg-unset", headers=headers, body=update()))
        assert err.value.status == 401

    # the warning names the variable, never a value
    caplog.set_level(logging.WARNING, logger="exoclaw.wasm")
    plugin = WasmPlugin()
    cfgs = (WasmPluginConfig(name="tg", path=str(wasm_build["telegram"]),
                             secrets={"webhook_secret": "TG_NOT_SET_ANYWHERE", "bot_token": "TG_BOT_TOKEN"}),)
    tables_of(plugin)["plugins"].apply(cfgs)
    host = FakeHost()
    await plugin.gateway_startup(host)
    await plugin.gateway_shutdown(host)
    from exoclaw_core.logs import redact

    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "TG_NOT_SET_ANYWHERE" in text and "401" in text
    assert TOKEN not in text and SECRET not in text
    # and the gateway's log redaction does not eat the variable's name
    assert "TG_NOT_SET_ANYWHERE" in redact(text) and "[REDACTED]" not in redact(text)


async def test_channel_name_is_the_configured_one(wasm_build, monkeypatch):
    monkeypatch.setenv("TG_WEBHOOK_SECRET", SECRET)
    plugin = WasmPlugin()
    cfgs = (WasmPluginConfig(name="tg2", path=str(wasm_build["telegram"]), secrets={"webhook_secret": "TG_WEBHOOK_SECRET"}),)
    tables_of(plugin)["plugins"].apply(cfgs)
    host = FakeHost()
    await plugin.gateway_startup(host)
    try:
        msg = await parse(plugin, "tg2", update(), {HEADER: SECRET})
        assert msg.channel == "tg2"  # the plugin wrote "telegram"; the config name wins
    finally:
        await plugin.gateway_shutdown(host)


async def test_mock_channel_messages(wasm):
    body = json.dumps({"user": "alice", "chat": "room-1", "text": "hi there", "id": "m1"}).encode()
    msg = await parse(wasm, "mock", body)
    assert msg == IncomingMessage(channel="mock", account="alice", content="hi there", peer="room-1",
                                  message_id="m1", reply_to={"chat": "room-1"})
    msg = await parse(wasm, "mock", b'{"user": "bob", "text": "yo"}')
    assert msg.peer == "main" and msg.message_id is None and msg.guild is None and msg.team is None
    for body, reason in ((b'{"text": "x"}', "missing field: user"), (b'{"user": "u"}', "missing field: text")):
        with pytest.raises(ChannelError) as err:
            await parse(wasm, "mock", body)
        assert err.value.status == 400 and err.value.reason == reason


@pytest.mark.parametrize("answer, problem", [
    ([], "must return an object"),
    ({"content": "x"}, "message has no account"),
    ({"account": "a"}, "message has no content"),
    ({"account": True, "content": "x"}, "account must be a string"),
    ({"account": "a", "content": ["x"]}, "content must be a string"),
    ({"account": "a", "content": "x", "reply_to": [1]}, "reply_to must be an object"),
    ({"account": "a", "content": "x", "guild": {"id": 1}}, "guild must be a string"),
])
def test_malformed_plugin_messages_are_400(answer, problem):
    with pytest.raises(ChannelError) as err:
        channels.message_from("c", answer)
    assert err.value.status == 400 and problem in err.value.reason


def test_message_fields_are_validated_and_normalized():
    msg = channels.message_from("c", {"channel": "spoofed", "account": 7, "content": "", "peer": "", "guild": "g",
                                      "team": None, "message_id": 12, "reply_to": {"x": 1}})
    assert msg == IncomingMessage(channel="c", account="7", content="", peer="main", guild="g", team=None,
                                  message_id="12", reply_to={"x": 1})
    assert channels.message_from("c", {"ignore": True}) == Ignore()


# ---------------------------------------------------------------- format_outgoing


async def test_telegram_outgoing_request_keeps_placeholders(wasm):
    reply = OutgoingReply(channel="telegram", reply_to={"chat_id": -1001234567890}, content='Hi "you" ✓')
    result = wasm.format_outgoing(reply)
    assert inspect.isawaitable(result)
    req = await result
    assert isinstance(req, OutgoingRequest)
    assert req.method == "POST"
    assert req.url == "http://127.0.0.1:8081/bot{{secret:bot_token}}/sendMessage"  # the core substitutes
    assert req.headers == {"content-type": "application/json"}
    assert req.body == {"chat_id": -1001234567890, "text": 'Hi "you" ✓'}
    assert req.secrets == {"bot_token": TOKEN, "webhook_secret": SECRET}
    assert req.allowed_hosts == ("127.0.0.1",)
    assert TOKEN not in repr(req) and SECRET not in repr(req)


async def test_mock_outgoing_request(wasm):
    req = await wasm.format_outgoing(OutgoingReply(channel="mock", reply_to={"chat": "room-1"}, content="hello"))
    assert req == OutgoingRequest(method="POST", url="http://127.0.0.1:9/reply",
                                  headers={"content-type": "application/json"},
                                  body={"chat": "room-1", "text": "hello"}, secrets={}, allowed_hosts=())
    with pytest.raises(ChannelError) as err:
        await wasm.format_outgoing(OutgoingReply(channel="mock-noreply", reply_to={"chat": "c"}, content="x"))
    assert err.value.status == 500 and err.value.reason == "missing config: reply_url"


async def test_round_trip_reply_to(wasm):
    msg = await parse(wasm, "telegram", update(chat_id=-42), {HEADER: SECRET})
    req = await wasm.format_outgoing(OutgoingReply(channel="telegram", reply_to=msg.reply_to, content=msg.content))
    assert req.body == {"chat_id": -42, "text": "hello bot"}


def test_sandbox_failures_in_channels_are_500(wasm_build):
    lp = bridge.load_plugin(WasmPluginConfig(name="mock", path=str(wasm_build["mock"]), max_output_bytes=50,
                                             config={"reply_url": "http://127.0.0.1:9/reply"}))
    with pytest.raises(ChannelError) as err:
        channels.format_outgoing(lp, OutgoingReply(channel="mock", reply_to={"chat": "c"}, content="x" * 100))
    assert err.value.status == 500 and err.value.reason.startswith("channel mock output too large")
