"""Channels end to end in one process: real WASM adapters (telegram, mock), real HTTP both ways.

A real gateway (tests.harness) with the ``wasm`` builtin plugin loading the
Zig ``telegram`` and ``mock`` modules; platforms post webhooks over loopback
HTTP and a fake Bot API (conftest.FakePlatform) receives the replies. The
turns are answered by the offline echo provider (``You said: <text>``).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from typing import Any

import aiohttp
import pytest

from builtin_plugins.wasm import channels as wasm_channels
from exoclaw_core.logs import setup_logging
from exoclaw_hooks import AgentConfig
from builtin_plugins.router import Binding
from builtin_plugins.wasm.settings import WasmPluginConfig
from exoclaw_core.config import GatewayConfig
from tests.channels.conftest import HEADER, TOKEN, WEBHOOK_SECRET, FakePlatform, telegram_update
from tests.harness import make_settings, running_gateway

SECRETS = {"bot_token": "TG_TOKEN_VAR", "webhook_secret": "TG_SECRET_VAR"}


@pytest.fixture(autouse=True)
def telegram_env(monkeypatch):
    """The plugin's secrets, in the environment BEFORE any gateway starts (read at load time)."""
    monkeypatch.setenv("TG_TOKEN_VAR", TOKEN)
    monkeypatch.setenv("TG_SECRET_VAR", WEBHOOK_SECRET)


@pytest.fixture
def fake():
    with FakePlatform() as p:
        yield p


def telegram_plugin(wasm_build, api_base: str, capabilities: tuple[str, ...] = ("http:127.0.0.1",)) -> WasmPluginConfig:
    return WasmPluginConfig(
        name="telegram", path=str(wasm_build["telegram"]), capabilities=capabilities,
        secrets=SECRETS, config={"api_base": api_base},
    )


def mock_plugin(wasm_build, reply_url: str) -> WasmPluginConfig:
    return WasmPluginConfig(name="mock", path=str(wasm_build["mock"]), capabilities=("http:127.0.0.1",),
                            config={"reply_url": reply_url})


def echo_tool(wasm_build) -> WasmPluginConfig:
    return WasmPluginConfig(name="echo", path=str(wasm_build["echo"]))


async def post(gw, channel: str, body: Any, headers: dict[str, str] | None = None,
               secret: str | None = WEBHOOK_SECRET) -> tuple[int, dict[str, Any]]:
    """POST a webhook as the platform would: JSON body, the secret header unless ``secret`` is None."""
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    h = {"Content-Type": "application/json", **(headers or {})}
    if secret is not None:
        h[HEADER] = secret
    async with aiohttp.ClientSession() as s, s.post(f"{gw.http_url}/webhook/{channel}", data=data, headers=h) as r:
        return r.status, await r.json()


async def wait_until(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(0.02)
    return False


async def counts(gw) -> dict[str, int]:
    return await gw.rt.store.inbox_counts()


async def settled(gw, state: str, n: int = 1, timeout: float = 20.0) -> bool:
    """``n`` inbox items reached ``state`` (replied / failed)."""
    async def check():
        return (await counts(gw))[state] >= n
    return await wait_until(check, timeout)


async def rpc(gw, method: str, params: Any = None) -> Any:
    async with gw.client() as c:
        reply = await c.request(method, params)
    assert reply.get("error") is None, reply
    return reply["result"]


@pytest.fixture
def wasm_calls(monkeypatch) -> list[str]:
    """Names of the WASM channel exports called (still called for real)."""
    calls: list[str] = []
    real = wasm_channels.call_export

    def spy(plugin, export, payload, *args):
        calls.append(export)
        return real(plugin, export, payload, *args)

    monkeypatch.setattr(wasm_channels, "call_export", spy)
    return calls


def our_log_text(records: list[logging.LogRecord]) -> str:
    """Every log line the gateway wrote, raw (before redaction), tracebacks included.

    The fake platform's own ``aiohttp.access`` lines (they show the path it
    was asked for) are not ours.
    """
    fmt = logging.Formatter("%(name)s %(message)s")
    return "\n".join(fmt.format(r) for r in records if r.name != "aiohttp.access")


# ---------------------------------------------------------------- telegram, the happy path


async def test_update_is_acknowledged_at_once_and_answered_with_send_message(wasm_build, tmp_path, fake, caplog):
    """200 before the (slow) turn ends; sendMessage to /bot<token>/sendMessage; the token nowhere else."""
    caplog.set_level(logging.DEBUG)
    formatted = io.StringIO()  # the gateway's own handler (redacting) at debug, too
    root = logging.getLogger()
    level = root.level
    setup_logging("debug", stream=formatted)
    settings = make_settings(data_dir=tmp_path, echo_delay=0.2, plugins=(telegram_plugin(wasm_build, fake.base),))
    try:
        async with running_gateway(settings) as gw:
            t0 = time.perf_counter()
            status, body = await post(gw, "telegram", telegram_update())
            ack_s = time.perf_counter() - t0
            assert status == 200 and body["ok"] is True and isinstance(body["id"], int)
            assert fake.count() == 0  # acknowledged before the reply exists
            assert (await counts(gw))["pending"] == 1  # committed to the inbox
            assert await fake.wait(1)
            assert await settled(gw, "replied")
            sessions = await rpc(gw, "session.list")
            history = await rpc(gw, "chat.history", {"session": "default:telegram:4242:-100123"})
            status_result = await rpc(gw, "status")
    finally:
        for h in [h for h in root.handlers if getattr(h, "_exoclaw", False)]:
            root.removeHandler(h)
        root.setLevel(level)
    assert ack_s < 1.0, f"webhook took {ack_s:.3f}s to acknowledge"

    (got,) = fake.received
    assert got["method"] == "POST"
    assert got["path"] == f"/bot{TOKEN}/sendMessage"
    assert got["headers"]["Content-Type"].startswith("application/json")
    assert got["json"]["chat_id"] == -100123 and isinstance(got["json"]["chat_id"], int)
    assert got["json"]["text"].startswith("You said: hello bot\n\n[echo: ")
    assert set(got["json"]) == {"chat_id", "text"}
    # the token only where the host put it: the URL path; not the body, headers or query
    assert TOKEN not in got["raw"].decode() and TOKEN not in json.dumps(got["headers"]) and TOKEN not in got["query"]

    assert [s["key"] for s in sessions] == ["default:telegram:4242:-100123"]
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert history[0]["content"] == "hello bot" and history[1]["content"] == got["json"]["text"]
    assert status_result["deliveries"]["replied"] == 1

    ours = our_log_text(caplog.records)
    assert "event=webhook_accepted" in ours and "event=reply_sent" in ours
    assert "{{secret:bot_token}}" in ours  # the request is logged as the plugin wrote it
    for secret in (TOKEN, WEBHOOK_SECRET):
        assert secret not in ours
        assert secret not in formatted.getvalue()
    assert "event=reply_sent" in formatted.getvalue()


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize("secret", [None, "", "wrong-secret", WEBHOOK_SECRET + "x", WEBHOOK_SECRET[:-1]])
async def test_wrong_or_missing_secret_header_is_401_and_nothing_is_parsed(wasm_build, tmp_path, fake, wasm_calls,
                                                                           secret):
    settings = make_settings(data_dir=tmp_path, plugins=(telegram_plugin(wasm_build, fake.base),))
    async with running_gateway(settings) as gw:
        status, body = await post(gw, "telegram", telegram_update(), secret=secret)
        assert status == 401 and body == {"ok": False, "error": "authenticity check failed"}
        assert wasm_calls == []  # the WASM never saw the payload
        assert await counts(gw) == {"pending": 0, "replied": 0, "failed": 0, "ignored": 0}
        assert await rpc(gw, "session.list") == []
    await asyncio.sleep(0.1)
    assert fake.received == []


async def test_unknown_channel_and_a_tool_plugins_name_are_404(wasm_build, tmp_path, fake):
    settings = make_settings(data_dir=tmp_path, plugins=(telegram_plugin(wasm_build, fake.base), echo_tool(wasm_build)))
    async with running_gateway(settings) as gw:
        assert {p["name"]: p["kind"] for p in (await rpc(gw, "status"))["wasm_plugins"]} == {
            "telegram": "channel", "echo": "tool"}
        for channel in ("whatsapp", "echo"):
            status, body = await post(gw, channel, telegram_update())
            assert status == 404, channel
            assert body == {"ok": False, "error": f"unknown channel: {channel}"}
        assert (await counts(gw))["pending"] == 0
    assert fake.received == []


async def test_payloads_the_plugins_reject_are_400_with_the_reason(wasm_build, tmp_path, fake, wasm_calls):
    settings = make_settings(data_dir=tmp_path, plugins=(telegram_plugin(wasm_build, fake.base),
                                                         mock_plugin(wasm_build, f"{fake.base}/reply")))
    async with running_gateway(settings) as gw:
        cases = [
            ("telegram", b"update_id=1&text=hi", "body is not a JSON object"),
            ("telegram", b"", "body is not a JSON object"),
            ("telegram", json.dumps({"message": {"text": "hi"}}), "missing field: update_id"),
            ("mock", json.dumps({"chat": "c1", "text": "hi", "id": "m1"}), "missing field: user"),
            ("mock", json.dumps({"user": "u1", "chat": "c1"}), "missing field: text"),
            ("mock", b"not json at all", "body is not a JSON object"),
        ]
        for channel, payload, reason in cases:
            status, body = await post(gw, channel, payload)
            assert (status, body) == (400, {"ok": False, "error": reason}), (channel, payload)
        assert wasm_calls == ["parse_incoming"] * len(cases)  # verified, then parsed and refused by the WASM
        assert await counts(gw) == {"pending": 0, "replied": 0, "failed": 0, "ignored": 0}
    assert fake.received == []


async def test_oversize_body_is_413(wasm_build, tmp_path, fake, wasm_calls):
    settings = make_settings(data_dir=tmp_path, gateway=GatewayConfig(port=0, max_message_bytes=2000),
                             plugins=(telegram_plugin(wasm_build, fake.base),))
    big = telegram_update(text="x" * 5000)
    async with running_gateway(settings) as gw:
        status, body = await post(gw, "telegram", big)
        assert status == 413 and body["ok"] is False and "2000" in body["error"]

        async def chunks():  # no Content-Length: the size is only known while reading
            data = json.dumps(big).encode()
            for i in range(0, len(data), 512):
                yield data[i:i + 512]

        async with aiohttp.ClientSession() as s, s.post(
            f"{gw.http_url}/webhook/telegram", data=chunks(),
            headers={HEADER: WEBHOOK_SECRET, "Content-Type": "application/json"},
        ) as r:
            assert r.status == 413
        # just under the limit is fine
        status, _ = await post(gw, "telegram", telegram_update(text="y" * 1000))
        assert status == 200
        assert await settled(gw, "replied")
    assert wasm_calls.count("parse_incoming") == 1
    assert fake.count() == 1


async def test_updates_without_text_are_acknowledged_and_ignored(wasm_build, tmp_path, fake):
    settings = make_settings(data_dir=tmp_path, plugins=(telegram_plugin(wasm_build, fake.base),))
    async with running_gateway(settings) as gw:
        updates = [
            telegram_update(20001, text=None),  # a sticker
            {"update_id": 20002, "edited_message": telegram_update(text="edited")["message"]},
            {"update_id": 20003, "my_chat_member": {"chat": {"id": -100123, "type": "group"}, "date": 1700000000}},
        ]
        for u in updates:
            status, body = await post(gw, "telegram", u)
            assert (status, body) == (200, {"ok": True, "ignored": True})
        await asyncio.sleep(0.3)
        assert await counts(gw) == {"pending": 0, "replied": 0, "failed": 0, "ignored": 0}
        assert await rpc(gw, "session.list") == []
    assert fake.received == []


# ---------------------------------------------------------------- nothing doubled


async def test_duplicate_update_id_is_processed_once_even_concurrently(wasm_build, tmp_path, fake):
    settings = make_settings(data_dir=tmp_path, echo_delay=0.05, plugins=(telegram_plugin(wasm_build, fake.base),))
    async with running_gateway(settings) as gw:
        results = await asyncio.gather(*(post(gw, "telegram", telegram_update(10001)) for _ in range(8)))
        assert all(status == 200 for status, _ in results)
        assert sum(1 for _, b in results if b.get("duplicate")) == 7
        assert len({b["id"] for _, b in results if not b.get("duplicate")}) == 1
        assert await settled(gw, "replied")
        # the platform retries again later, after the reply went out
        status, body = await post(gw, "telegram", telegram_update(10001, text="hello bot (retried)"))
        assert (status, body) == (200, {"ok": True, "duplicate": True})
        await asyncio.sleep(0.5)
        history = await rpc(gw, "chat.history", {"session": "default:telegram:4242:-100123"})
        assert await counts(gw) == {"pending": 0, "replied": 1, "failed": 0, "ignored": 0}
    assert fake.count() == 1
    assert [m["role"] for m in history] == ["user", "assistant"] and history[0]["content"] == "hello bot"


# ---------------------------------------------------------------- secrets and grants


async def test_format_outgoing_to_an_ungranted_host_is_refused_and_nothing_is_sent(wasm_build, tmp_path, fake, caplog):
    caplog.set_level(logging.DEBUG)
    plugin = telegram_plugin(wasm_build, fake.base, capabilities=("http:api.telegram.org",))
    settings = make_settings(data_dir=tmp_path, plugins=(plugin,))
    async with running_gateway(settings) as gw:
        status, _ = await post(gw, "telegram", telegram_update())
        assert status == 200  # acknowledged: the refusal is about the reply, not the webhook
        assert await settled(gw, "failed")
        status_result = await rpc(gw, "status")
        async with aiohttp.ClientSession() as s, s.get(f"{gw.http_url}/metrics") as r:
            metrics = await r.text()
    await asyncio.sleep(0.2)
    assert fake.received == []
    assert status_result["deliveries"] == {"pending": 0, "replied": 0, "failed": 1, "ignored": 0}
    ours = our_log_text(caplog.records)
    assert "event=delivery_refused" in ours and "host 127.0.0.1 is not granted to channel telegram" in ours
    assert TOKEN not in ours and WEBHOOK_SECRET not in ours
    assert 'exoclaw_webhooks_total{channel="telegram",outcome="delivery_refused"} 1.0' in metrics


async def test_a_reply_the_plugin_cannot_format_is_recorded_as_failed(wasm_build, tmp_path, fake, caplog):
    """mock without ``config.reply_url``: the webhook is acknowledged, the reply fails, nothing is sent."""
    plugin = WasmPluginConfig(name="mock", path=str(wasm_build["mock"]), capabilities=("http:127.0.0.1",))
    settings = make_settings(data_dir=tmp_path, plugins=(plugin,))
    async with running_gateway(settings) as gw:
        status, _ = await post(gw, "mock", {"user": "u1", "chat": "c1", "text": "hi", "id": "m1"}, secret=None)
        assert status == 200
        assert await settled(gw, "failed")
        status_result = await rpc(gw, "status")
    assert fake.received == []
    assert status_result["deliveries"]["failed"] == 1
    assert "event=reply_failed" in caplog.text and "missing config: reply_url" in caplog.text


# ---------------------------------------------------------------- the mock channel


async def test_mock_channel_full_round_trip(wasm_build, tmp_path, fake):
    settings = make_settings(data_dir=tmp_path, plugins=(mock_plugin(wasm_build, f"{fake.base}/reply"),))
    async with running_gateway(settings) as gw:
        status, body = await post(gw, "mock", {"user": "u1", "chat": "c1", "text": "hi", "id": "m1"}, secret=None)
        assert status == 200 and body["ok"] is True
        assert await fake.wait(1)
        assert await settled(gw, "replied")
        history = await rpc(gw, "chat.history", {"session": "default:mock:u1:c1"})
    (got,) = fake.received
    assert (got["method"], got["path"]) == ("POST", "/reply")
    assert got["json"] == {"chat": "c1", "text": history[-1]["content"]}
    assert got["json"]["text"].startswith("You said: hi\n\n[echo: ")


# ---------------------------------------------------------------- routing


async def test_bindings_route_a_telegram_chat_to_a_second_agent(wasm_build, tmp_path, fake):
    settings = make_settings(
        data_dir=tmp_path,
        agents=(AgentConfig(id="work", provider="echo", model="echo", system_prompt="You are the work agent."),),
        bindings=(Binding(channel="telegram", peer_id="-100999", agent_id="work"),),
        plugins=(telegram_plugin(wasm_build, fake.base),),
    )
    async with running_gateway(settings) as gw:
        assert (await post(gw, "telegram", telegram_update(30001, chat_id=-100999, text="work chat")))[0] == 200
        assert (await post(gw, "telegram", telegram_update(30002, chat_id=-100123, text="home chat")))[0] == 200
        assert await settled(gw, "replied", 2)
        keys = sorted(s["key"] for s in await rpc(gw, "session.list"))
    assert keys == ["default:telegram:4242:-100123", "work:telegram:4242:-100999"]
    sent = {r["json"]["chat_id"]: r["json"]["text"] for r in fake.received}
    assert set(sent) == {-100999, -100123}
    assert sent[-100999].startswith("You said: work chat") and sent[-100123].startswith("You said: home chat")
    # the work agent's system prompt is part of its context: a different character count in the echo note
    assert sent[-100999].split("[echo: ")[1] != sent[-100123].split("[echo: ")[1]


# ---------------------------------------------------------------- a platform that refuses


async def test_a_reply_the_platform_refuses_once_is_retried_and_sent(wasm_build, tmp_path, caplog):
    with FakePlatform(statuses=[500]) as fake:
        settings = make_settings(data_dir=tmp_path, plugins=(telegram_plugin(wasm_build, fake.base),))
        async with running_gateway(settings) as gw:
            gw.rt.channels.retry.base_s = 0.01
            assert (await post(gw, "telegram", telegram_update()))[0] == 200
            assert await settled(gw, "replied")
            status_result = await rpc(gw, "status")
            await asyncio.sleep(0.2)
    assert fake.count() == 2
    first, second = fake.received
    assert first["path"] == second["path"] == f"/bot{TOKEN}/sendMessage" and first["json"] == second["json"]
    assert status_result["deliveries"]["replied"] == 1 and status_result["deliveries"]["failed"] == 0
    assert "event=reply_refused" in caplog.text and "status=500" in caplog.text
    assert TOKEN not in our_log_text(caplog.records)


async def test_a_platforms_retry_after_is_honoured(wasm_build, tmp_path):
    with FakePlatform(statuses=[(429, "0")]) as fake:
        settings = make_settings(data_dir=tmp_path, plugins=(telegram_plugin(wasm_build, fake.base),))
        async with running_gateway(settings) as gw:
            gw.rt.channels.retry.base_s = 600  # our own backoff would wait ten minutes: the platform said 0 s
            assert (await post(gw, "telegram", telegram_update()))[0] == 200
            assert await settled(gw, "replied")
    assert fake.count() == 2


async def test_a_platform_that_keeps_failing_gets_bounded_attempts_then_failed(wasm_build, tmp_path, caplog):
    with FakePlatform(statuses=[500] * 20) as fake:
        settings = make_settings(data_dir=tmp_path, plugins=(telegram_plugin(wasm_build, fake.base),))
        async with running_gateway(settings) as gw:
            gw.rt.channels.retry.base_s = 0.01
            attempts = gw.rt.channels.retry.max_retries + 1
            assert (await post(gw, "telegram", telegram_update()))[0] == 200
            assert await settled(gw, "failed")
            await asyncio.sleep(0.3)
            status_result = await rpc(gw, "status")
    assert 1 < attempts == fake.count() < 20
    assert status_result["deliveries"] == {"pending": 0, "replied": 0, "failed": 1, "ignored": 0}
    assert "event=reply_failed" in caplog.text and "platform answered 500" in caplog.text
    assert TOKEN not in our_log_text(caplog.records)


async def test_a_client_error_from_the_platform_is_not_retried(wasm_build, tmp_path, caplog):
    """403 (e.g. the bot was removed from the chat): retrying cannot help; failed after one attempt."""
    with FakePlatform(statuses=[403, 403]) as fake:
        settings = make_settings(data_dir=tmp_path, plugins=(telegram_plugin(wasm_build, fake.base),))
        async with running_gateway(settings) as gw:
            gw.rt.channels.retry.base_s = 0.01
            assert (await post(gw, "telegram", telegram_update()))[0] == 200
            assert await settled(gw, "failed")
            await asyncio.sleep(0.2)
    assert fake.count() == 1
    assert "event=reply_failed" in caplog.text and "platform answered 403" in caplog.text


async def test_an_unreachable_platform_is_retried_then_failed_without_leaking_the_token(wasm_build, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    with FakePlatform() as fake:
        dead = fake.base  # a port nobody listens on once the fake is gone
    settings = make_settings(data_dir=tmp_path, plugins=(telegram_plugin(wasm_build, dead),))
    async with running_gateway(settings) as gw:
        gw.rt.channels.retry.base_s = 0.01
        assert (await post(gw, "telegram", telegram_update()))[0] == 200
        assert await settled(gw, "failed")
    ours = our_log_text(caplog.records)
    assert ours.count("event=reply_refused") == gw.rt.channels.retry.max_retries + 1
    assert "event=reply_failed" in ours
    assert TOKEN not in ours
