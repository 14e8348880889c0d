"""How both HTTP providers fail: reasons, retryable / retry_after, output_started, no leaked key."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
import socket
import time
import traceback

import pytest

from builtin_plugins.providers._http import redact, retry_after, safe_url
from exoclaw_hooks import ConfigError, TextDelta
from tests.builtin_plugins.providers.provider_helpers import (
    ask, base_url, collect, collect_until_error, make_provider, text_of)
from tests.fakes.fixtures import fake_host, fake_llm, http_session  # noqa: F401  (fixtures)
from tests.fakes.llm_script import Cut, Fail, Hang, Raw, Reply

APIS = ["anthropic", "openai"]
#: events each API sends before its first text delta (Anthropic: message_start, block start, ping)
EVENTS_BEFORE_TEXT = {"anthropic": 3, "openai": 1}


@pytest.fixture(params=APIS)
def api(request):
    return request.param


def provider(api, host, server, **kwargs):
    return make_provider(api, host, base_url(api, server), **kwargs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


ENDPOINT = {"anthropic": "/v1/messages", "openai": "/chat/completions"}


async def test_connection_refused_names_the_url(api, fake_host):
    port = free_port()
    p = make_provider(api, fake_host, f"http://127.0.0.1:{port}")
    events, err = await collect_until_error(p)
    url = f"http://127.0.0.1:{port}{ENDPOINT[api]}"
    assert events == [] and err.reason == f"connection refused ({url})"
    assert str(err) == f"provider error: connection refused ({url})"
    assert err.output_started is False and err.status is None


async def test_connection_errors_name_the_url_without_credentials(api, fake_host):
    port = free_port()
    p = make_provider(api, fake_host, f"http://alice:hunter2pass@127.0.0.1:{port}/base")
    _, err = await collect_until_error(p)
    url = f"http://127.0.0.1:{port}/base{ENDPOINT[api]}"
    if api == "anthropic":
        assert err.reason == f"connection refused ({url})"
    else:  # aiohttp will not send both a bearer header and credentials from the URL
        assert err.reason.startswith(f"cannot send the request to {url} (")
    text = f"{err} {err!r}"
    assert "hunter2pass" not in text and "alice" not in text


def test_safe_url_drops_credentials_query_and_fragment():
    assert safe_url("https://u:p@[::1]:8443/v1/x?key=k#frag") == "https://[::1]:8443/v1/x"
    assert safe_url("https://api.openai.com/v1/chat/completions?api-key=s") == "https://api.openai.com/v1/chat/completions"
    assert safe_url("http://h:notaport/x") == "the configured base_url"


async def test_unresolvable_host_names_the_url(api, fake_host):
    # ".invalid" never resolves (RFC 6761): no network is needed to see it fail
    p = make_provider(api, fake_host, "http://no-such-host.invalid:8443/v1")
    _, err = await collect_until_error(p)
    assert err.reason.startswith(f"cannot connect to http://no-such-host.invalid:8443/v1{ENDPOINT[api]} (")


@contextlib.contextmanager
def full_backlog():
    """A listening socket nobody accepts from, its backlog filled: new connects hang."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):
            s = socket.socket()
            s.setblocking(False)
            fillers.append(s)
            if s.connect_ex(("127.0.0.1", port)) != 0 and not select.select([], [s], [], 0.2)[1]:
                break  # this connect hangs: the backlog is full
        else:
            pytest.skip("this kernel accepts connections beyond the listen backlog")
        yield port
    finally:
        for s in fillers:
            s.close()
        server.close()


async def test_connect_timeout(api, fake_host):
    with full_backlog() as port:
        p = make_provider(api, fake_host, f"http://127.0.0.1:{port}", connect_timeout_s=0.3, read_timeout_s=30)
        start = time.monotonic()
        events, err = await collect_until_error(p)
    assert err.reason == f"timeout (http://127.0.0.1:{port}{ENDPOINT[api]})" and events == [] and not err.output_started
    assert time.monotonic() - start < 5  # the connect timeout, not the read timeout


async def test_no_response_headers_is_a_timeout(api, fake_llm, fake_host):
    fake_llm.enqueue(Hang())
    events, err = await collect_until_error(provider(api, fake_host, fake_llm, timeout_s=0.3))
    assert err.reason.startswith("timeout (http://127.0.0.1:") and events == [] and err.output_started is False


async def test_gap_between_chunks_longer_than_read_timeout(api, fake_llm, fake_host):
    fake_llm.enqueue(Hang(after_chunks=EVENTS_BEFORE_TEXT[api] + 1, reply=Reply(text_chunks=["one", "two"])))
    events, err = await collect_until_error(provider(api, fake_host, fake_llm, read_timeout_s=0.3))
    assert events == [TextDelta("one")]
    assert err.reason.startswith("timeout (http://127.0.0.1:") and err.output_started is True


async def test_read_timeout_is_per_gap_not_total(api, fake_llm, fake_host):
    fake_llm.enqueue(Reply(text_chunks=[str(i) for i in range(8)], chunk_delay_s=0.08))
    start = time.monotonic()
    events = await collect(provider(api, fake_host, fake_llm, read_timeout_s=0.4))
    assert time.monotonic() - start > 0.4
    assert text_of(events) == "01234567"


async def test_slow_first_byte_within_the_timeout(api, fake_llm, fake_host):
    fake_llm.enqueue(Reply(text_chunks=["late"], delay_s=0.2))
    assert text_of(await collect(provider(api, fake_host, fake_llm, timeout_s=1))) == "late"


def test_invalid_timeout_options_fail_at_start_up(api, fake_host):
    with pytest.raises(ConfigError, match="read_timeout_s must be a positive number"):
        make_provider(api, fake_host, None, read_timeout_s="soon")
    with pytest.raises(ConfigError, match="connect_timeout_s"):
        make_provider(api, fake_host, None, connect_timeout_s=0)


@pytest.mark.parametrize("status,retryable", [
    (400, False), (401, False), (403, False), (404, False), (408, True), (429, True),
    (500, True), (502, True), (503, True), (529, True),
])
async def test_http_errors_carry_the_provider_message(api, fake_llm, fake_host, status, retryable):
    message = f"the provider's own words for {status}"
    fake_llm.enqueue(Fail(status, message))
    events, err = await collect_until_error(provider(api, fake_host, fake_llm))
    assert err.reason == message and str(err) == f"provider error: {message}"
    assert err.status == status and err.retryable is retryable
    assert err.retry_after is None and err.output_started is False and events == []


@pytest.mark.parametrize("headers,expected", [
    ({"retry-after": "7"}, 7.0), ({"retry-after": "0"}, 0.0), ({"retry-after": "1.5"}, 1.5),
    ({"retry-after-ms": "250"}, 0.25), ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
    ({"retry-after": "soon"}, None),
])
async def test_retry_after(api, fake_llm, fake_host, headers, expected):
    fake_llm.enqueue(Fail(429, "Rate limited", headers=headers))
    _, err = await collect_until_error(provider(api, fake_host, fake_llm))
    assert err.retryable and err.retry_after == expected


def test_retry_after_http_date():
    assert retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 120))
    assert 100 < retry_after({"retry-after": future}) <= 120


async def test_error_body_that_is_not_json(api, fake_llm, fake_host):
    fake_llm.enqueue(Fail(502, body="<html><body>Bad gateway</body></html>"))
    _, err = await collect_until_error(provider(api, fake_host, fake_llm))
    assert err.reason == "HTTP 502" and err.retryable and err.status == 502


async def test_should_retry_header_wins(api, fake_llm, fake_host):
    fake_llm.enqueue(Fail(409, "lock timeout", headers={"x-should-retry": "true"}),
                     Fail(500, "do not retry this", headers={"x-should-retry": "false"}))
    assert (await collect_until_error(provider(api, fake_host, fake_llm)))[1].retryable is True
    assert (await collect_until_error(provider(api, fake_host, fake_llm)))[1].retryable is False


async def test_200_that_is_not_an_event_stream(api, fake_llm, fake_host):
    fake_llm.enqueue(Raw(['{"error": {"message": "streaming is disabled here"}}'], content_type="application/json"))
    _, err = await collect_until_error(provider(api, fake_host, fake_llm))
    assert err.reason == "streaming is disabled here" and not err.retryable


async def test_200_json_without_an_error(api, fake_llm, fake_host):
    fake_llm.enqueue(Raw(['{"id": "x", "content": []}'], content_type="application/json"))
    _, err = await collect_until_error(provider(api, fake_host, fake_llm))
    assert err.reason == "provider answered JSON, not an event stream" and err.status == 200


async def test_error_body_arriving_in_pieces(api, fake_llm, fake_host):
    body = '{"error": {"type": "rate_limit_error", "message": "' + "slow down " * 500 + '"}}'
    fake_llm.enqueue(Raw([body[:100], body[100:3000], body[3000:]], status=429, content_type="application/json",
                         chunk_delay_s=0.05))
    _, err = await collect_until_error(provider(api, fake_host, fake_llm))
    assert err.reason.startswith("slow down slow down") and err.reason.endswith("…") and len(err.reason) <= 300
    assert err.retryable and err.status == 429


@pytest.mark.parametrize("abort", [True, False], ids=["connection-dropped", "body-ended"])
async def test_cut_before_any_text(api, fake_llm, fake_host, abort):
    fake_llm.enqueue(Cut(after_chunks=1, abort=abort))
    events, err = await collect_until_error(provider(api, fake_host, fake_llm))
    assert events == [] and err.reason == "stream ended before completion" and err.output_started is False


@pytest.mark.parametrize("abort", [True, False], ids=["connection-dropped", "body-ended"])
async def test_cut_after_text(api, fake_llm, fake_host, abort):
    fake_llm.enqueue(Cut(after_chunks=EVENTS_BEFORE_TEXT[api] + 2, reply=Reply(text_chunks=["a", "b", "c"]),
                         abort=abort))
    events, err = await collect_until_error(provider(api, fake_host, fake_llm))
    assert events == [TextDelta("a"), TextDelta("b")]
    assert err.reason == "stream ended before completion" and err.output_started is True


async def test_cut_in_the_middle_of_an_event(api, fake_llm, fake_host):
    fake_llm.enqueue(Raw([b'data: {"type": "message_st']))
    _, err = await collect_until_error(provider(api, fake_host, fake_llm))
    assert err.reason == "stream ended before completion"


async def test_unparsable_json_in_a_data_line(api, fake_llm, fake_host):
    fake_llm.enqueue(Raw([b"event: message_start\ndata: {not json}\n\n", b"data: more\n\n"]))
    _, err = await collect_until_error(provider(api, fake_host, fake_llm))
    assert err.reason.startswith("provider sent invalid JSON in its stream") and "{not json}" in err.reason


async def test_consumer_leaving_early_closes_the_connection(api, fake_llm, fake_host):
    fake_llm.enqueue(Reply(text_chunks=[f"{i} " for i in range(200)], chunk_delay_s=0.02))
    stream = provider(api, fake_host, fake_llm).stream(ask())
    async for event in stream:
        assert isinstance(event, TextDelta)
        break
    await stream.aclose()
    for _ in range(100):
        if fake_llm.requests[0].disconnected:
            break
        await asyncio.sleep(0.02)
    assert fake_llm.requests[0].disconnected


def test_redact_headers():
    assert redact({"x-api-key": "k", "Authorization": "Bearer k", "accept": "x"}) == {
        "x-api-key": "[redacted]", "Authorization": "[redacted]", "accept": "x"}


SECRET = "sk-LEAKCANARY-7f3a9c1e5b2d4f6a8c0e"


@pytest.mark.parametrize("echo_key", [False, True], ids=["api-401", "server-echoes-key"])
async def test_api_key_never_leaks(api, fake_llm, fake_host, caplog, echo_key):
    caplog.set_level(logging.DEBUG)  # root: every logger, every level
    for name in ("aiohttp", "asyncio", "builtin_plugins"):
        caplog.set_level(logging.DEBUG, logger=name)
    fake_llm.api_key = "the-right-key"  # the fake answers 401 the way the real API does
    if echo_key:
        fake_llm.api_key = None
        fake_llm.enqueue(Fail(401, f"Invalid key {SECRET} (header: x-api-key={SECRET})"))
    events, err = await collect_until_error(provider(api, fake_host, fake_llm, api_key=SECRET))
    assert err.status == 401 and not err.retryable and events == []
    assert fake_llm.requests[-1].headers.get("x-api-key" if api == "anthropic" else "authorization", "").endswith(SECRET)
    assert err.__context__ is None and err.__cause__ is None  # no chained error carrying headers
    texts = [str(err), repr(err), err.reason, "".join(traceback.format_exception(err))]
    texts += [caplog.text] + [r.getMessage() for r in caplog.records] + [str(r.__dict__) for r in caplog.records]
    for text in texts:
        assert SECRET not in text
    if echo_key:
        assert err.reason == "Invalid key [redacted] (header: x-api-key=[redacted])"
    assert any("[redacted]" in r.getMessage() for r in caplog.records)  # headers were logged, redacted
