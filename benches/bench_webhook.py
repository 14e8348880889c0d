"""What a channel webhook costs (SPEC §7): the acknowledgement, and the WASM adapter's work.

* ``test_webhook_ack_latency`` — request in → 200 out for ``POST
  /webhook/telegram``, as the platform sees it, on a real gateway: an
  ``exoclaw serve`` subprocess on loopback (its own process, its log to a
  file at the default level, its SQLite database in a temporary
  ``$EXOCLAW_HOME``) with the real ``telegram`` module. Each iteration
  posts a new Telegram Update (fresh ``update_id``) with the secret header
  over a kept-alive connection (``http.client``, as Telegram keeps its
  connection), so every one goes through the constant-time secret check,
  ``parse_incoming`` in the WASM (a worker thread), the duplicate check and
  the fsynced inbox commit, then the 200. The turns (echo provider, no
  delay) and the ``sendMessage`` deliveries to a fake Bot API (a thread of
  the benchmark process) run in the background while later requests are
  measured, as they would in production; at the end the benchmark waits
  until every reply has been delivered and checks that none was lost or
  doubled (``status`` ``deliveries``). ``EXOCLAW_BENCH_WEBHOOKS`` sets the
  number of measured requests (default 500).
* ``test_wasm_channel_hooks[telegram|mock]`` — the WASM adapter's share
  per message: the ``wasm`` plugin's ``parse_incoming`` hook (verify,
  the hop to its worker thread, a fresh instance, ``parse_incoming``,
  validation into an ``IncomingMessage``) followed by its
  ``format_outgoing`` hook (a fresh instance, ``format_outgoing``, the
  ``OutgoingRequest`` with placeholders), awaited from an event loop as
  the gateway does.

Run::

    PYTHONPATH=. python -m pytest benches/bench_webhook.py -s \\
        --benchmark-columns=min,median,mean,max,rounds
"""

from __future__ import annotations

import asyncio
import http.client
import itertools
import json
import os
import time

import pytest

from builtin_plugins.wasm.plugin import WasmPlugin
from exoclaw_hooks import IncomingMessage, OutgoingReply, OutgoingRequest, WebhookRequest
from builtin_plugins.wasm.settings import WasmPluginConfig
from exoclaw_hooks.testing import FakeHost, tables_of
from tests.channels.conftest import HEADER, TOKEN, WEBHOOK_SECRET, FakePlatform, Serve, telegram_update, write_config
from tests.core.cli.test_serve import clean_env
from tests.wasm_plugins.conftest import wasm_build  # noqa: F401 - session fixture: build once

SECRETS = {"bot_token": "BENCH_TG_TOKEN", "webhook_secret": "BENCH_TG_SECRET"}
ROUNDS = int(os.environ.get("EXOCLAW_BENCH_WEBHOOKS", "500"))


@pytest.fixture
def secrets_env(monkeypatch):
    monkeypatch.setenv("BENCH_TG_TOKEN", TOKEN)
    monkeypatch.setenv("BENCH_TG_SECRET", WEBHOOK_SECRET)


def test_webhook_ack_latency(benchmark, wasm_build, tmp_path):
    env = clean_env(tmp_path, TG_TOKEN_VAR=TOKEN, TG_SECRET_VAR=WEBHOOK_SECRET)
    ids = itertools.count(1_000_000)
    posted = 0
    with FakePlatform() as fake:
        served = Serve(tmp_path, write_config(tmp_path, wasm_build["telegram"], fake.base, chunk_delay_s=0.0), env, 1)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)  # kept alive, as Telegram does
            headers = {"Content-Type": "application/json", HEADER: WEBHOOK_SECRET}

            def one() -> None:
                nonlocal posted
                body = json.dumps(telegram_update(next(ids), text="what is on my calendar tomorrow?"))
                conn.request("POST", "/webhook/telegram", body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                assert resp.status == 200, data
                posted += 1

            for _ in range(20):  # warm up: connection, WASM worker threads, SQLite pages
                one()
            benchmark.pedantic(one, rounds=ROUNDS, iterations=1, warmup_rounds=0)
            conn.close()
            # drain: every acknowledged update gets its reply, once
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                deliveries = served.rpc("status")["deliveries"]
                if deliveries["replied"] + deliveries["failed"] >= posted:
                    break
                time.sleep(0.1)
            time.sleep(0.3)
            deliveries = served.rpc("status")["deliveries"]
        finally:
            served.stop()
    assert deliveries == {"pending": 0, "replied": posted, "failed": 0, "ignored": 0}
    assert fake.count() == posted
    benchmark.extra_info["updates"] = posted
    data = sorted(benchmark.stats.stats.data)
    for q in (50, 95, 99):
        benchmark.extra_info[f"p{q}_ms"] = round(data[min(len(data) - 1, len(data) * q // 100)] * 1000, 3)
    print(f"\nwebhook ack latency over {len(data)} requests: "
          + ", ".join(f"{k} {v} ms" for k, v in benchmark.extra_info.items() if k.startswith("p")))


def _channel_configs(wasm_build) -> tuple[WasmPluginConfig, ...]:
    return (
        WasmPluginConfig(name="telegram", path=str(wasm_build["telegram"]), capabilities=("http:127.0.0.1",),
                         secrets=SECRETS, config={"api_base": "http://127.0.0.1:8081"}),
        WasmPluginConfig(name="mock", path=str(wasm_build["mock"]), capabilities=("http:127.0.0.1",),
                         config={"reply_url": "http://127.0.0.1:9000/reply"}),
    )


CASES = {
    "telegram": (
        json.dumps(telegram_update(918273645, chat_id=-1001234567890, text="What's on my calendar tomorrow? " * 4)),
        {"Content-Type": "application/json", HEADER: WEBHOOK_SECRET},
        {"chat_id": -1001234567890},
    ),
    "mock": (
        json.dumps({"user": "u1", "chat": "c1", "text": "What's on my calendar tomorrow? " * 4, "id": "m1"}),
        {"Content-Type": "application/json"},
        {"chat": "c1"},
    ),
}


@pytest.mark.parametrize("channel", ["telegram", "mock"])
def test_wasm_channel_hooks(benchmark, wasm_build, secrets_env, channel):
    plugin = WasmPlugin()
    tables_of(plugin)["plugins"].apply(_channel_configs(wasm_build))
    host = FakeHost()
    body, headers, reply_to = CASES[channel]
    request = WebhookRequest(channel=channel, headers=headers, body=body.encode())
    reply_text = "Nothing yet: enjoy your day."
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(plugin.gateway_startup(host))

        async def one() -> OutgoingRequest:
            msg = await plugin.parse_incoming(request)
            assert isinstance(msg, IncomingMessage)
            return await plugin.format_outgoing(OutgoingReply(channel, msg.reply_to, reply_text))

        for _ in range(20):
            loop.run_until_complete(one())
        req = benchmark(lambda: loop.run_until_complete(one()))
    finally:
        loop.run_until_complete(plugin.gateway_shutdown(host))
        loop.close()
    assert req.body == {**reply_to, "text": reply_text}
    if channel == "telegram":
        assert req.url == "http://127.0.0.1:8081/bot{{secret:bot_token}}/sendMessage"
