"""The OpenAI face's errors (SPEC §4): auth, Origin, bad requests, unknown model, budget, provider.

Each one is raised by the official ``openai`` client as its own exception
class, with OpenAI's body shape ``{"error": {"message", "type", "code", "param"}}``.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import re

import aiohttp
import openai
import pytest

from exoclaw_hooks import BudgetExceeded, ProviderError, TextDelta, hookimpl
from builtin_plugins.metering.settings import BudgetsConfig
from exoclaw_core.config import GatewayConfig
from exoclaw_hooks.testing import Script, ScriptedProvider
from tests.harness import make_settings, running_gateway

from .test_openai_api import Scripted, client

USER = [{"role": "user", "content": "hello"}]


def error_count(gw) -> float:
    return gw.rt.metrics.errors.labels("openai_api")._value.get()


async def post(gw, body=None, *, data=None, headers=None):
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.http_url + "/v1/chat/completions", json=body, data=data, headers=headers or {}) as r:
            return r.status, await r.json(content_type=None), r.headers


async def test_token_is_required_as_a_bearer(tmp_path):
    settings = make_settings(data_dir=tmp_path, gateway=GatewayConfig(port=0, token="s3cret-token"))
    async with running_gateway(settings) as gw:
        for key in ("wrong", "s3cret-tokenX"):
            async with client(gw, api_key=key) as oa:
                with pytest.raises(openai.AuthenticationError) as err:
                    await oa.chat.completions.create(model="exoclaw", messages=USER)
                assert err.value.status_code == 401 and err.value.code == "invalid_api_key"
                assert err.value.type == "invalid_request_error"
                assert key not in err.value.message
                with pytest.raises(openai.AuthenticationError):
                    await oa.models.list()
        status, body, headers = await post(gw, {"model": "exoclaw", "messages": USER})  # no header at all
        assert status == 401 and body["error"]["code"] == "invalid_api_key" and body["error"]["param"] is None
        assert headers["WWW-Authenticate"] == "Bearer"
        status, _, _ = await post(gw, {"model": "exoclaw", "messages": USER},
                                  headers={"Authorization": "Basic czNjcmV0LXRva2Vu"})
        assert status == 401
        async with client(gw, api_key="s3cret-token") as oa:
            r = await oa.chat.completions.create(model="exoclaw", messages=USER)
            assert r.choices[0].message.content.startswith("You said: hello")
            assert [m.id for m in (await oa.models.list()).data] == ["exoclaw", "default"]
        assert error_count(gw) == 6  # 2 keys x 2 calls, no header, Basic


@pytest.mark.parametrize("origin, allowed, ok", [
    ("http://evil.example", (), False),
    ("http://localhost:3000", (), True),
    ("http://127.0.0.1:8080", (), True),
    ("https://chat.example.org", ("https://chat.example.org",), True),
])
async def test_browser_origins_follow_the_ws_rule(tmp_path, origin, allowed, ok):
    settings = make_settings(data_dir=tmp_path, gateway=GatewayConfig(port=0, allowed_origins=allowed))
    async with running_gateway(settings) as gw:
        status, body, _ = await post(gw, {"model": "exoclaw", "messages": USER}, headers={"Origin": origin})
        async with aiohttp.ClientSession() as s:
            async with s.get(gw.http_url + "/v1/models", headers={"Origin": origin}) as r:
                models_status = r.status
    assert (status, models_status) == ((200, 200) if ok else (403, 403))
    if not ok:
        assert body["error"]["code"] == "origin_not_allowed"


@pytest.mark.parametrize("body, data, param, code", [
    (None, b"not json", None, None),
    (None, b"[1, 2]", None, None),
    ({"model": "exoclaw"}, None, "messages", "missing_required_parameter"),
    ({"messages": USER}, None, "model", "missing_required_parameter"),
    ({"model": 5, "messages": USER}, None, "model", "invalid_type"),
    ({"model": "exoclaw", "messages": []}, None, "messages", "empty_array"),
    ({"model": "exoclaw", "messages": "hello"}, None, "messages", "invalid_type"),
    ({"model": "exoclaw", "messages": ["hello"]}, None, "messages[0]", "invalid_type"),
    ({"model": "exoclaw", "messages": [{"role": "robot", "content": "x"}]}, None, "messages[0].role", "invalid_value"),
    ({"model": "exoclaw", "messages": [{"role": "system", "content": "x"}]}, None, "messages", "invalid_value"),
    ({"model": "exoclaw", "messages": [{"role": "user", "content": "  "}]}, None, "messages[0].content",
     "invalid_value"),
    ({"model": "exoclaw", "messages": [{"role": "user", "content": 3}]}, None, "messages[0].content", "invalid_type"),
    ({"model": "exoclaw", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]}, None, "messages[0].content[0].type",
     "invalid_value"),
    ({"model": "exoclaw", "messages": [{"role": "user", "content": [{"type": "text", "text": None}]}]}, None,
     "messages[0].content[0].text", "invalid_type"),
    ({"model": "exoclaw", "messages": USER, "n": 2}, None, "n", "unsupported_value"),
    ({"model": "exoclaw", "messages": USER, "n": True}, None, "n", "invalid_type"),
    ({"model": "exoclaw", "messages": USER, "stream": "yes"}, None, "stream", "invalid_type"),
    ({"model": "exoclaw", "messages": USER, "stream_options": {"include_usage": 1}}, None,
     "stream_options.include_usage", "invalid_type"),
    ({"model": "exoclaw", "messages": USER, "user": ["a"]}, None, "user", "invalid_type"),
    ({"model": "exoclaw", "messages": USER, "user": "u" * 300}, None, "user", "invalid_value"),
])
async def test_bad_requests_are_400_invalid_request_error(tmp_path, body, data, param, code):
    async with running_gateway(make_settings(data_dir=tmp_path)) as gw:
        status, answer, _ = await post(gw, body, data=data)
        assert error_count(gw) == 1
        assert gw.rt.metrics.turns._metrics == {}  # no turn ran
    assert status == 400
    err = answer["error"]
    assert err["type"] == "invalid_request_error" and err["param"] == param and err["code"] == code
    assert isinstance(err["message"], str) and err["message"]


async def test_sdk_raises_bad_request_error(tmp_path):
    async with running_gateway(make_settings(data_dir=tmp_path)) as gw:
        async with client(gw) as oa:
            with pytest.raises(openai.BadRequestError) as err:
                await oa.chat.completions.create(model="exoclaw", messages=USER, n=3)
            assert err.value.param == "n"
            with pytest.raises(openai.BadRequestError):
                await oa.chat.completions.create(model="exoclaw", messages=[{"role": "assistant", "content": "x"}],
                                                 stream=True)


async def test_too_large_body_is_413_in_openai_shape(tmp_path):
    settings = make_settings(data_dir=tmp_path, gateway=GatewayConfig(port=0, max_message_bytes=1000))
    async with running_gateway(settings) as gw:
        status, body, _ = await post(gw, {"model": "exoclaw", "messages": [{"role": "user", "content": "x" * 70_000}]})
    assert status == 413 and body["error"]["code"] == "request_too_large"


async def test_unknown_model_is_404_model_not_found(tmp_path):
    async with running_gateway(make_settings(data_dir=tmp_path)) as gw:
        async with client(gw) as oa:
            for stream in (False, True):
                with pytest.raises(openai.NotFoundError) as err:
                    await oa.chat.completions.create(model="gpt-4o", messages=USER, stream=stream)
                assert err.value.code == "model_not_found" and err.value.param == "model"
                assert "gpt-4o" in err.value.message


async def test_exoclaw_without_any_agent_is_404_with_the_spec_text(tmp_path):
    async with running_gateway(make_settings(data_dir=tmp_path), load_entrypoints=False) as gw:
        async with client(gw) as oa:
            with pytest.raises(openai.NotFoundError) as err:
                await oa.chat.completions.create(model="exoclaw", messages=USER, user="eve")
    assert err.value.body["message"] == "no agent configured for openai:eve:main"


def _metering_loaded() -> bool:
    try:
        importlib.import_module("builtin_plugins.metering.plugin")
        return True
    except Exception:  # noqa: BLE001 - absent or broken: the stand-in refuses instead
        return False


class RefuseEveryCall:
    """Stands in for the metering plugin when it is not installed."""

    @hookimpl
    def before_llm_call(self, call):
        raise BudgetExceeded("session", 5, 1)


@pytest.mark.parametrize("stream", [False, True])
async def test_budget_is_429_insufficient_quota_with_the_spec_text(tmp_path, stream):
    settings = make_settings(data_dir=tmp_path, budgets=BudgetsConfig(session=1))
    plugins = [] if _metering_loaded() else [("refuse", RefuseEveryCall())]
    async with running_gateway(settings, plugins=plugins) as gw:
        async with client(gw) as oa:
            with pytest.raises(openai.RateLimitError) as err:
                await oa.chat.completions.create(model="exoclaw", messages=USER, stream=stream)
        assert error_count(gw) == 1
    e = err.value
    assert e.status_code == 429 and e.type == "insufficient_quota" and e.code == "insufficient_quota"
    assert re.fullmatch(r"token budget exceeded \(session: \d+/1\)", e.body["message"])
    assert e.response.headers["x-should-retry"] == "false"


@pytest.mark.parametrize("stream", [False, True])
async def test_provider_failure_is_502(tmp_path, stream):
    provider = ScriptedProvider()
    provider.enqueue(*[Script(error=ProviderError("connection refused"))] * 5)  # the core's retries too
    settings = make_settings(data_dir=tmp_path, provider="scripted", model="m1")
    async with running_gateway(settings, plugins=[("scripted", Scripted(provider))]) as gw:
        async with client(gw) as oa:
            with pytest.raises(openai.APIStatusError) as err:
                await oa.chat.completions.create(model="exoclaw", messages=USER, stream=stream)
    e = err.value
    assert e.status_code == 502 and isinstance(e, openai.InternalServerError)
    assert e.body["message"] == "provider error: connection refused" and e.type == "api_error"


async def test_failure_after_output_started_ends_the_stream_with_an_error_event(tmp_path):
    provider = ScriptedProvider()
    provider.enqueue(Script(text=["Hel", "lo"], error=ProviderError("timeout"), error_first=False))
    settings = make_settings(data_dir=tmp_path, provider="scripted", model="m1")
    async with running_gateway(settings, plugins=[("scripted", Scripted(provider))]) as gw:
        async with client(gw) as oa:
            stream = await oa.chat.completions.create(model="exoclaw", messages=USER, stream=True)
            seen = []
            with pytest.raises(openai.APIError) as err:
                async for chunk in stream:
                    seen.append(chunk.choices[0].delta.content)
        async with aiohttp.ClientSession() as s:  # the same on the wire
            provider.enqueue(Script(text=["Hel"], error=ProviderError("timeout"), error_first=False))
            async with s.post(gw.http_url + "/v1/chat/completions",
                              json={"model": "exoclaw", "messages": USER, "stream": True}) as r:
                raw = (await r.read()).decode()
    assert seen == ["", "Hel", "lo"]
    assert err.value.message == "provider error: timeout" and err.value.body["type"] == "api_error"
    assert raw.endswith('data: {"error": {"message": "provider error: timeout", "type": "api_error", '
                        '"code": "provider_error", "param": null}}\n\ndata: [DONE]\n\n')
    assert '"finish_reason":"stop"' not in raw


class Hanging:
    """A provider that streams ``before`` and then hangs until cancelled."""

    def __init__(self, before: list[str]):
        self.before, self.started = before, asyncio.Event()

    @hookimpl
    def register_providers(self, register):
        register("hanging", lambda settings: self)

    async def stream(self, request):
        self.started.set()
        for text in self.before:
            yield TextDelta(text)
        await asyncio.Event().wait()


@pytest.mark.parametrize("after_output", [False, True])
async def test_a_turn_cancelled_by_shutdown_ends_the_request_cleanly(tmp_path, after_output):
    provider = Hanging(["partial "] if after_output else [])
    settings = make_settings(data_dir=tmp_path, provider="hanging", model="m1")
    async with running_gateway(settings, plugins=[("hanging", provider)]) as gw:
        async with aiohttp.ClientSession() as s:
            pending = asyncio.create_task(s.post(gw.http_url + "/v1/chat/completions", json={
                "model": "exoclaw", "stream": True, "messages": USER}))
            await asyncio.wait_for(provider.started.wait(), 5)
            await asyncio.sleep(0.02)
            await gw.rt.stop(grace_s=0.05)
            resp = await pending
            raw = (await resp.read()).decode()
    if after_output:
        assert resp.status == 200 and '"delta":{"content":"partial "}' in raw
        assert '"message": "the turn was cancelled (the gateway is shutting down)"' in raw
        assert raw.endswith("data: [DONE]\n\n")
    else:
        assert resp.status == 503 and json.loads(raw)["error"]["code"] == "cancelled"


@pytest.mark.parametrize("method, path", [
    ("GET", "/v1/chat/completions"), ("PUT", "/v1/models"), ("POST", "/v1/completions"),
    ("GET", "/v1/embeddings"), ("DELETE", "/v1/models/exoclaw"), ("GET", "/v1/"), ("POST", "/v1/responses"),
])
async def test_unknown_paths_and_methods_get_openais_json_404(tmp_path, method, path):
    """Issue 20: not aiohttp's plain-text 404/405 but OpenAI's own answer, which every SDK understands."""
    async with running_gateway(make_settings(data_dir=tmp_path)) as gw:
        async with aiohttp.ClientSession() as s:
            async with s.request(method, gw.http_url + path, headers={"Origin": "http://localhost:3000"}) as r:
                assert r.status == 404 and r.content_type == "application/json"
                assert r.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
                assert await r.json() == {"error": {"message": f"Invalid URL ({method} {path})",
                                                    "type": "invalid_request_error", "code": None, "param": None}}
        async with client(gw) as oa:
            with pytest.raises(openai.NotFoundError):
                await oa.embeddings.create(model="exoclaw", input="x")


async def test_a_plugins_own_v1_route_is_not_shadowed_by_the_404(tmp_path):
    from aiohttp import web

    class Extra:
        @hookimpl
        def gateway_startup(self, host):
            async def usage(request):
                return web.json_response({"plugin": True})

            host.app.router.add_get("/v1/usage", usage)

    async with running_gateway(make_settings(data_dir=tmp_path), plugins=[("extra", Extra())]) as gw:
        async with aiohttp.ClientSession() as s:
            async with s.get(gw.http_url + "/v1/usage") as r:
                assert r.status == 200 and await r.json() == {"plugin": True}
            async with s.get(gw.http_url + "/v1/usage/x") as r:
                assert r.status == 404 and (await r.json())["error"]["message"] == "Invalid URL (GET /v1/usage/x)"
