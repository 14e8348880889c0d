"""CORS on /v1: a chat UI on an allowed origin can call the OpenAI-compatible face from a browser."""

from __future__ import annotations

import aiohttp
import pytest

from exoclaw_core.config import GatewayConfig
from tests.harness import make_settings, running_gateway

BODY = {"model": "exoclaw", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("origin", ["http://localhost:3000", "https://chat.example.com"])
async def test_allowed_origins_get_a_preflight_and_cors_headers(tmp_path, origin):
    settings = make_settings(data_dir=tmp_path, gateway=GatewayConfig(port=0, allowed_origins=("https://chat.example.com",)))
    async with running_gateway(settings) as gw:
        async with aiohttp.ClientSession() as s:
            async with s.options(f"{gw.http_url}/v1/chat/completions", headers={
                "Origin": origin, "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            }) as r:
                assert r.status == 204
                assert r.headers["Access-Control-Allow-Origin"] == origin
                assert "POST" in r.headers["Access-Control-Allow-Methods"]
                assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
            async with s.post(f"{gw.http_url}/v1/chat/completions", json={**BODY, "stream": True},
                              headers={"Origin": origin}) as r:
                assert r.status == 200 and r.headers["Access-Control-Allow-Origin"] == origin
                assert (await r.text()).rstrip().endswith("data: [DONE]")
            async with s.get(f"{gw.http_url}/v1/models", headers={"Origin": origin}) as r:
                assert r.status == 200 and r.headers["Access-Control-Allow-Origin"] == origin


async def test_other_origins_get_no_cors_and_403(tmp_path):
    async with running_gateway(make_settings(data_dir=tmp_path)) as gw:
        async with aiohttp.ClientSession() as s:
            async with s.options(f"{gw.http_url}/v1/chat/completions",
                                 headers={"Origin": "https://evil.example"}) as r:
                assert r.status == 403 and "Access-Control-Allow-Origin" not in r.headers
            async with s.post(f"{gw.http_url}/v1/chat/completions", json=BODY,
                              headers={"Origin": "https://evil.example"}) as r:
                assert r.status == 403 and "Access-Control-Allow-Origin" not in r.headers
            async with s.get(f"{gw.http_url}/healthz", headers={"Origin": "http://localhost"}) as r:
                assert "Access-Control-Allow-Origin" not in r.headers  # only the /v1 face


async def preflight(gw, path: str, origin: str, method: str, asked: str):
    async with aiohttp.ClientSession() as s:
        async with s.options(f"{gw.http_url}{path}", headers={
            "Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": asked,
        }) as r:
            return r.status, r.headers


def allowed_headers(headers) -> list[str]:
    return [h.strip().lower() for h in headers["Access-Control-Allow-Headers"].split(",")]


async def test_a_preflight_allows_the_headers_the_openai_sdks_send(tmp_path):
    """Issue 20: the openai npm SDK asks for x-stainless-*; every safe header asked for is allowed, by name."""
    asked = ("authorization, content-type, x-stainless-arch, x-stainless-lang, x-stainless-os, "
             "x-stainless-package-version, x-stainless-retry-count, x-stainless-runtime, "
             "x-stainless-runtime-version, x-stainless-timeout, openai-organization, x-exoclaw-peer")
    async with running_gateway(make_settings(data_dir=tmp_path)) as gw:
        status, headers = await preflight(gw, "/v1/chat/completions", "http://localhost:5173", "POST", asked)
    assert status == 204
    allowed = allowed_headers(headers)
    assert {h.strip() for h in asked.split(",")} <= set(allowed)
    assert "*" not in allowed and "Access-Control-Allow-Credentials" not in headers
    assert "access-control-request-headers" in headers["Vary"].lower() and "origin" in headers["Vary"].lower()


async def test_a_preflight_never_allows_unsafe_or_malformed_headers(tmp_path):
    asked = "cookie, host, x-forwarded-for, proxy-authorization, sec-fetch-mode, content-length, *, bad header, x-ok"
    async with running_gateway(make_settings(data_dir=tmp_path)) as gw:
        status, headers = await preflight(gw, "/v1/models", "http://127.0.0.1:3000", "GET", asked)
    assert status == 204
    assert allowed_headers(headers) == ["authorization", "content-type", "x-exoclaw-peer", "x-ok"]
