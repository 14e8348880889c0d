"""The host's HTTP for WASM plugins: every hop against the grant, the deadline, the caps.

Extism's own ``http_request`` followed redirects to any host (a grant of
``http:127.0.0.1`` reached ``localhost`` through a 302); the host's
replacement checks every hop. The probe server (``tests/fakes/http_probe``)
counts what reached it, by the host name it was asked under.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import quote

import pytest

from builtin_plugins.wasm import hosthttp
from builtin_plugins.wasm.callctx import CallContext
from builtin_plugins.wasm.settings import WasmPluginConfig
from tests.fakes.http_probe import start_probe
from tests.harness import make_settings, running_gateway


def chat(content: str, account: str = "alice") -> dict[str, str]:
    return {"channel": "t", "account": account, "content": content}


def call(tool: str, args: dict) -> str:
    return f"/tool {tool} {json.dumps(args)}"


async def result_of(c, content: str) -> dict:
    frames = await c.chat(chat(content))
    (res,) = [f["data"] for f in frames if f.get("event") == "tool_result"]
    return res


def redirect(probe, to: str, code: int = 302) -> str:
    return probe.url(f"/redirect?code={code}&to={quote(to, safe='')}")


def settings_with(tmp_path, wasm_build, grant: tuple[str, ...] = ("http:127.0.0.1",), **testtools):
    return make_settings(data_dir=tmp_path, plugins=(
        WasmPluginConfig(name="fetch", path=str(wasm_build["fetch"]), capabilities=grant, timeout_ms=10_000),
        WasmPluginConfig(name="testtools", path=str(wasm_build["testtools"]), capabilities=grant,
                         **{"timeout_ms": 10_000, **testtools}),
    ))


async def test_a_redirect_to_an_ungranted_host_is_refused_and_never_requested(wasm_build, tmp_path):
    async with start_probe() as probe, running_gateway(settings_with(tmp_path, wasm_build)) as gw:
        async with gw.client() as c:
            hidden = probe.url("/hello", host="localhost")  # the same server, by a name not granted
            for tool in ("fetch", "http"):
                res = await result_of(c, call(tool, {"url": redirect(probe, hidden)}))
                assert res["is_error"] is True
                assert res["content"] == (
                    f"tool {tool}: HTTP request denied: http://localhost:{probe.port}/hello is not granted "
                    f"(http:127.0.0.1) (redirected from http://127.0.0.1:{probe.port}/redirect)")
    assert probe.hits_on("localhost") == []  # 0 requests reached the ungranted host
    assert [path.split("?")[0] for path in probe.hits_on("127.0.0.1")] == ["/redirect", "/redirect"]


async def test_a_redirect_from_granted_host_to_granted_host_is_followed(wasm_build, tmp_path):
    async with start_probe() as a, start_probe() as b, running_gateway(settings_with(tmp_path, wasm_build)) as gw:
        async with gw.client() as c:
            res = await result_of(c, call("fetch", {"url": redirect(a, b.url("/hello"))}))
            assert res == {"tool_use_id": res["tool_use_id"], "content": "hello from loopback", "is_error": False}
            for code in (301, 303, 307, 308):
                res = await result_of(c, call("http", {"url": redirect(a, b.url("/hello"), code)}))
                assert res["content"] == "200 hello from loopback", code
    assert len(a.hits) == 5 and b.hits_on("127.0.0.1") == ["/hello"] * 5


async def test_redirects_not_followed_go_back_to_the_plugin(wasm_build, tmp_path):
    async with start_probe() as a, start_probe() as b, running_gateway(settings_with(tmp_path, wasm_build)) as gw:
        async with gw.client() as c:
            # a 307 keeps the method: a POST is not re-sent elsewhere, the plugin gets the 307
            res = await result_of(c, call("http", {"url": redirect(a, b.url("/hello"), 307), "method": "POST"}))
            assert res["content"].startswith("307 ") and res["is_error"] is False
            # at most 5 redirects are followed; the 6th goes back to the plugin; a loop ends the same way
            res = await result_of(c, call("http", {"url": a.url("/chain?n=5")}))
            assert res["content"] == "200 end of chain"
            res = await result_of(c, call("http", {"url": a.url("/chain?n=6")}))
            assert res["content"] == "302 "
            res = await result_of(c, call("http", {"url": a.url("/loop")}))
            assert res["content"] == "302 "
            # a redirect to another scheme is not followed either
            res = await result_of(c, call("http", {"url": redirect(a, "file:///etc/passwd")}))
            assert res["content"] == "302 "
    assert b.hits == []


async def test_credentials_do_not_follow_a_redirect_to_another_host():
    async with start_probe() as a, start_probe() as b:
        ctx = CallContext("p", hosts=("127.0.0.1", "localhost"), timeout_ms=10_000)
        spec = {"url": redirect(a, b.url("/hello", host="localhost")), "method": "GET",
                "headers": {"Authorization": "Bearer plugin-own", "X-Other": "kept"}}
        status, _, body = await asyncio.to_thread(hosthttp.perform, ctx, spec, None)
        assert (status, body) == (200, b"hello from loopback")
        assert a.headers[0]["authorization"] == "Bearer plugin-own"
        assert "authorization" not in b.headers[0] and b.headers[0]["x-other"] == "kept"


async def test_a_trickling_server_is_cut_at_the_deadline(wasm_build, tmp_path):
    async with start_probe() as probe, running_gateway(settings_with(tmp_path, wasm_build, timeout_ms=1000)) as gw:
        async with gw.client() as c:
            res = await result_of(c, call("http", {"url": probe.url("/trickle")}))
            assert res == {"tool_use_id": res["tool_use_id"], "content": "tool http timed out after 1000ms",
                           "is_error": True}
            # the plugin's next call works
            res = await result_of(c, call("http", {"url": probe.url("/hello")}))
            assert res["content"] == "200 hello from loopback"


async def test_network_failures_and_oversized_answers_fail_the_call(wasm_build, tmp_path):
    settings = settings_with(tmp_path, wasm_build, memory_max_pages=32)  # 2 MiB
    async with start_probe() as probe, running_gateway(settings) as gw:
        async with gw.client() as c:
            res = await result_of(c, call("http", {"url": "http://127.0.0.1:1/"}))
            assert res["content"] == "tool http: HTTP request failed: connection refused"
            res = await result_of(c, call("http", {"url": probe.url(f"/big?n={3 * 1024 * 1024}")}))
            assert res["content"] == f"tool http: HTTP request failed: the response is larger than {2 * 1024 * 1024} bytes"
            res = await result_of(c, call("http", {"url": probe.url(f"/big?n={100_000}")}))
            assert res["content"].startswith("200 yyyy") and len(res["content"]) == 4 + 4096


@pytest.mark.parametrize("grant", [(), ("http:example.org",)])
async def test_without_the_grant_nothing_is_requested(wasm_build, tmp_path, grant):
    async with start_probe() as probe, running_gateway(settings_with(tmp_path, wasm_build, grant)) as gw:
        async with gw.client() as c:
            res = await result_of(c, call("http", {"url": probe.url("/hello")}))
            assert res["is_error"] is True and "HTTP request denied" in res["content"]
    assert probe.hits == []


async def test_only_http_and_https_even_with_every_host_granted(wasm_build, tmp_path):
    async with running_gateway(settings_with(tmp_path, wasm_build, ("http:*",))) as gw:
        async with gw.client() as c:
            res = await result_of(c, call("http", {"url": "file:///etc/passwd"}))
            assert res["content"] == ("tool http: HTTP request denied: file:///etc/passwd: "
                                      "only http and https URLs may be requested")
