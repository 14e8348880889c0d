"""Metrics, health/readiness, structured logs with a request id per turn, redaction."""

from __future__ import annotations

import io
import json
import logging
import re

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from exoclaw_core.gateway.app import create_app
from exoclaw_core.logs import redact, register_secret, setup_logging
from exoclaw_core.plugins import make_plugin_manager
from exoclaw_core.runtime import Runtime
from exoclaw_core.store.sqlite import open_store
from exoclaw_hooks import ProviderError
from exoclaw_hooks.testing import Script, ScriptedProvider
from tests.core.agent.test_turns import Scripted
from tests.harness import captured_log, make_settings, running_gateway


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def scrape(gw) -> dict:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{gw.http_url}/metrics") as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
            return samples(await r.text())


async def test_metrics_move_by_the_expected_amounts(tmp_path):
    provider = ScriptedProvider()
    provider.enqueue(Script(text=["a", "b"]), Script(text=["c"]), Script(error=ProviderError("connection refused")))
    settings = make_settings(data_dir=tmp_path, provider="scripted", model="m1")
    async with running_gateway(settings, plugins=[("scripted", Scripted(provider))]) as gw:
        before = await scrape(gw)
        async with gw.client() as c:
            during = await scrape(gw)
            for i in range(3):
                await c.chat({"channel": "t", "account": "u", "content": f"m{i}"})
        after = await scrape(gw)
    key = lambda name, **labels: (name, tuple(sorted(labels.items())))  # noqa: E731
    assert before.get(key("exoclaw_connections"), 0) == 0 and during[key("exoclaw_connections")] == 1
    assert after[key("exoclaw_connections")] == 0
    assert after[key("exoclaw_turns_total", agent="default", outcome="ok")] == 2
    assert after[key("exoclaw_turns_total", agent="default", outcome="error")] == 1
    assert after[key("exoclaw_tokens_total", direction="input")] == 20  # 2 calls x 10 (ScriptedProvider usage)
    assert after[key("exoclaw_tokens_total", direction="output")] == 10
    assert after[key("exoclaw_llm_call_seconds_count", model="m1", provider="scripted")] == 3
    assert after[key("exoclaw_llm_ttft_seconds_count", model="m1", provider="scripted")] == 2
    assert after[key("exoclaw_errors_total", kind="provider")] == 1
    for name in ("exoclaw_cost_usd_total", "exoclaw_turns_in_flight"):
        assert any(k[0] == name for k in after)
    # labels are bounded: no session key or account anywhere
    assert not any("u" == v or ":" in v for k in after for _, v in k[1])


async def test_readyz_only_after_start_up(tmp_path):
    settings = make_settings(data_dir=tmp_path)
    rt = Runtime(settings, make_plugin_manager(settings), open_store(None))
    app = create_app(rt)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(server.make_url("/readyz")) as r:
                assert r.status == 503
            async with s.get(server.make_url("/healthz")) as r:
                assert r.status == 200
            await rt.start(None)
            async with s.get(server.make_url("/readyz")) as r:
                assert r.status == 200
    finally:
        await server.close()


@pytest.fixture
def log_stream():
    with captured_log() as stream:
        yield stream


async def test_every_line_of_a_turn_carries_its_request_id(tmp_path, log_stream):
    async with running_gateway(make_settings(data_dir=tmp_path)) as gw:
        async with gw.client() as c:
            await c.chat({"channel": "t", "account": "u", "content": "one"})
            await c.chat({"channel": "t", "account": "u", "content": "two"})
    lines = [l for l in log_stream.getvalue().splitlines() if "event=" in l]
    turn_lines = [l for l in lines if re.search(r"event=(turn_start|context|llm_call|usage|turn_done)\b", l)]
    assert len(turn_lines) >= 8
    rids = [re.search(r"rid=(\S+)", l).group(1) for l in turn_lines]
    assert "-" not in rids
    starts = [i for i, l in enumerate(turn_lines) if "event=turn_start" in l]
    first, second = turn_lines[starts[0]:starts[1]], turn_lines[starts[1]:]
    assert len({re.search(r"rid=(\S+)", l).group(1) for l in first}) == 1
    assert len({re.search(r"rid=(\S+)", l).group(1) for l in second}) == 1
    assert rids[starts[0]] != rids[starts[1]]
    for line in lines:  # single-line, structured
        assert re.match(r"^\d{4}-\d\d-\d\dT[\d:.]+Z level=\w+ logger=\S+ rid=\S+ ", line)


async def test_json_log_format(tmp_path):
    stream = io.StringIO()
    setup_logging("info", "json", stream=stream)
    try:
        async with running_gateway(make_settings(data_dir=tmp_path)) as gw:
            async with gw.client() as c:
                await c.chat({"channel": "t", "account": "u", "content": "json please"})
    finally:
        setup_logging("warning", "text")
    records = [json.loads(l) for l in stream.getvalue().splitlines() if l.strip()]
    done = [r for r in records if r.get("event") == "turn_done"]
    assert done and done[0]["request_id"] != "-" and done[0]["level"] == "info"
    assert int(done[0]["input_tokens"]) > 0


def test_redaction_applies_to_every_logger_and_level():
    stream = io.StringIO()
    setup_logging("debug", "text", stream=stream)
    try:
        secret = "sk-live-redact-me-0123456789"
        register_secret(secret)
        for name in ("exoclaw.x", "aiohttp.client", "some.plugin", ""):
            logger = logging.getLogger(name)
            logger.debug("debug %s", secret)
            logger.error("headers {'x-api-key': '%s'}", "unregistered-key-abcdef")
            try:
                raise ValueError(f"boom {secret}")
            except ValueError:
                logger.exception("failed")
    finally:
        setup_logging("warning", "text")
    out = stream.getvalue()
    assert secret not in out and "unregistered-key-abcdef" not in out
    assert out.count("[REDACTED]") >= 12
    assert redact("Authorization: Bearer abcdefgh123") == "Authorization: [REDACTED]"


def test_placeholders_are_not_mistaken_for_secrets():
    assert redact("POST https://api/bot{{secret:bot_token}}/sendMessage") == (
        "POST https://api/bot{{secret:bot_token}}/sendMessage"
    )
    assert redact("secret: hunter2hunter2") == "secret: [REDACTED]"
