"""A fake LLM server speaking the Anthropic Messages and OpenAI Chat Completions APIs.

::

    async with start_fake_llm() as server:          # tests/fakes/fixtures.py
        server.enqueue(Reply(text_chunks=["Hel", "lo"], usage=(12, 3)))
        server.enqueue(Fail(429, "slow down", headers={"retry-after": "0"}), api="openai")
        ...  # point a provider at server.url (Anthropic) / server.openai_url
        server.requests[0].json["messages"]

Routes: ``POST /v1/messages`` (Anthropic), ``POST /v1/chat/completions`` and
``POST /chat/completions`` (OpenAI). Each request takes the next item of its
API's own queue, else of the shared queue, else a default echo reply
(``echo: <last user text>``). Every request is recorded in ``requests``.
With ``api_key`` set, a request carrying another key gets the API's 401.
"""

from __future__ import annotations

import asyncio
import collections
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from . import wire_anthropic, wire_openai
from .llm_script import Cut, Fail, Hang, InStreamError, Raw, Reply, Script

APIS = {"anthropic": wire_anthropic, "openai": wire_openai}


@dataclass
class RecordedRequest:
    api: str
    method: str
    path: str
    headers: CIMultiDict
    json: Any
    item: Any = None  # the script item that answered it
    disconnected: bool = field(default=False)  # the client left before the answer was complete
    peer: Any = None  # the client's (host, port): equal for requests on one kept-alive connection


class FakeLLMServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, api_key: str | None = None):
        self.host, self.port, self.api_key = host, port, api_key
        self.requests: list[RecordedRequest] = []
        self._queues: dict[str | None, collections.deque] = {None: collections.deque(), "anthropic": collections.deque(),
                                                             "openai": collections.deque()}
        self._stop = asyncio.Event()
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------ scripting
    def enqueue(self, *items: Script, api: str | None = None) -> "FakeLLMServer":
        """Answer the next requests (of ``api``, or of either API) with ``items``, in order."""
        if api not in self._queues:
            raise ValueError(f"api must be anthropic, openai or None (got {api!r})")
        self._queues[api].extend(items)
        return self

    def pending(self, api: str | None = None) -> int:
        return len(self._queues[api])

    @property
    def url(self) -> str:
        """Base URL: the Anthropic provider's ``base_url`` (``/v1/messages`` is appended)."""
        return f"http://{self.host}:{self.port}"

    @property
    def openai_url(self) -> str:
        """The OpenAI provider's ``base_url`` (``/chat/completions`` is appended)."""
        return self.url + "/v1"

    def _next(self, api: str, body: dict[str, Any]) -> Script:
        for queue in (self._queues[api], self._queues[None]):
            if queue:
                return queue.popleft()
        return self.echo_reply(api, body)

    @staticmethod
    def echo_reply(api: str, body: dict[str, Any]) -> Reply:
        text = "echo: " + APIS[api].last_user_text(body)
        return Reply(text_chunks=[text[i : i + 8] for i in range(0, len(text), 8)])

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> "FakeLLMServer":
        app = web.Application()
        app.router.add_post("/v1/messages", self._anthropic)
        app.router.add_post("/v1/chat/completions", self._openai)
        app.router.add_post("/chat/completions", self._openai)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        self._stop.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "FakeLLMServer":
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake when the server closes (a hung handler must not block shutdown)."""
        if seconds > 0:
            try:
                await asyncio.wait_for(self._stop.wait(), seconds)
            except asyncio.TimeoutError:
                pass

    # ------------------------------------------------------------ handlers
    async def _anthropic(self, request: web.Request) -> web.StreamResponse:
        return await self._handle("anthropic", request)

    async def _openai(self, request: web.Request) -> web.StreamResponse:
        return await self._handle("openai", request)

    async def _handle(self, api: str, request: web.Request) -> web.StreamResponse:
        wire = APIS[api]
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        record = RecordedRequest(api, request.method, request.path, CIMultiDict(request.headers), body,
                                 peer=request.transport.get_extra_info("peername") if request.transport else None)
        self.requests.append(record)
        if not isinstance(body, dict):
            return self._error(wire, Fail(400, "request body is not a JSON object"))
        if self.api_key is not None and not wire.auth_ok(request.headers, self.api_key):
            fail = wire.AUTH_FAIL if api == "anthropic" else wire.auth_fail(request.headers)
            record.item = fail
            return self._error(wire, fail)
        item = record.item = self._next(api, body)
        try:
            return await self._play(api, item, body, request)
        except (ConnectionError, asyncio.CancelledError):
            record.disconnected = True  # the client went away mid-stream
            raise

    def _error(self, wire: Any, fail: Fail) -> web.Response:
        if fail.body is not None:
            body = fail.body.encode() if isinstance(fail.body, str) else fail.body
            ctype = "text/plain"
        else:
            body, ctype = json.dumps(wire.error_body(fail)).encode(), "application/json"
        return web.Response(status=fail.status, body=body, headers={"content-type": ctype, **fail.headers})

    async def _play(self, api: str, item: Script, body: dict[str, Any], request: web.Request) -> web.StreamResponse:
        wire = APIS[api]
        if isinstance(item, Fail):
            await self._sleep(item.delay_s)
            return self._error(wire, item)
        if isinstance(item, Hang) and item.after_chunks == 0:
            await self._stop.wait()
            return web.Response(status=503, text="fake server closing")
        if isinstance(item, Raw):
            return await self._write(request, [c.encode() if isinstance(c, str) else c for c in item.chunks],
                                     item.chunk_delay_s, status=item.status, ctype=item.content_type,
                                     headers=item.headers)
        if isinstance(item, InStreamError):
            return await self._write(request, wire.in_stream_error(item, body), 0.0)
        reply = item if isinstance(item, Reply) else (item.reply or self.echo_reply(api, body))
        if not body.get("stream"):
            await self._sleep(reply.delay_s)
            return web.json_response(wire.full_message(reply, body))
        events = wire.stream_events(reply, body)
        await self._sleep(reply.delay_s)
        if isinstance(item, Reply):
            return await self._write(request, events, reply.chunk_delay_s)
        resp = await self._write(request, events[: item.after_chunks], reply.chunk_delay_s, finish=False)
        if isinstance(item, Hang):
            await self._stop.wait()
        if isinstance(item, Cut) and not item.abort:
            await resp.write_eof()
            return resp
        assert request.transport is not None
        request.transport.close()  # the chunked body is never terminated
        return resp

    async def _write(self, request: web.Request, chunks: list[bytes], delay: float, *, status: int = 200,
                     ctype: str = "text/event-stream; charset=utf-8", headers: Any = (),
                     finish: bool = True) -> web.StreamResponse:
        resp = web.StreamResponse(status=status, headers={"content-type": ctype, "cache-control": "no-cache",
                                                          **dict(headers)})
        await resp.prepare(request)
        for i, chunk in enumerate(chunks):
            if i and delay:
                await self._sleep(delay)
            await resp.write(chunk)
        if finish:
            await resp.write_eof()
        return resp
