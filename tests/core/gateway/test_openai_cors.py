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
