"""``POST /v1/chat/completions`` and ``GET /v1/models``: the OpenAI-compatible face (SPEC §4).

Any OpenAI client talks to Exoclaw through these two routes. ``model`` is an
agent id, or ``exoclaw`` for whatever agent the bindings route to. The
identity of a request is channel ``openai``, account = the body's ``user``
(default ``api``), peer = the ``X-Exoclaw-Peer`` header (default ``main``),
so the session is ``<agent>:openai:<user>:<peer>``.

**Exoclaw keeps the conversation.** Only the last ``user`` message of the
request is the new turn; earlier ``user``/``assistant``/``tool`` messages are
ignored, because the session's memory (soul, facts, the last turns) already
holds them: a client that resends its whole history does not pay for it
twice, and two clients of one session see one conversation. ``system`` and
``developer`` messages are added to the agent's system prompt for this turn
only. Sampling parameters (``temperature``, ``max_tokens`` …) and client
``tools`` are ignored: tools run inside the gateway, and the client sees only
the final text (never ``tool_calls``).

**Status before headers.** A streamed request waits for the turn's first
``text`` (or ``error``) event before sending its 200 and SSE headers, so a
budget refusal (429) or a provider failure (502) before any output is a
real HTTP error the client's SDK raises as its own exception class. An error
after output started is sent as a last ``data: {"error": {...}}`` event, then
``data: [DONE]``.

**Regenerate.** The same last user message sent again without the answer
it got is a new answer to it, replacing the old one (``regenerate.py``).

**Disconnects.** The turn runs as the runtime's own task: a client that goes
away mid-stream only stops the writes (one debug line); the turn completes
and is stored.

**Edges.** The body is read within ``[gateway] body_timeout_s`` (408), every
string in it and ``X-Exoclaw-Peer`` must be proper Unicode (400, before any
paid call), failed tokens are paced per address (429 with ``Retry-After``
once an address has failed too often), and any other ``/v1/*`` path or
method answers OpenAI's JSON 404.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any

from aiohttp import web

from exoclaw_hooks import IncomingMessage, Route, make_session_key

from ..agent.events import DONE as TURN_DONE, ErrorEvent, TextEvent, TurnEvent, UsageEvent
from ..logs import Every, quote
from ..runtime import NoAgent, Runtime
from . import text
from .auth import bearer_token, origin_allowed, token_matches
from .keys import AUTH_THROTTLE, RUNTIME
from .limits import ENVELOPE_BYTES, BodyInvalid, BodyTimeout, BodyTooLarge, ClientGone, close_after, read_body
from .regenerate import regenerated_turn
from .openai_format import DONE, MAX_ID_CHARS, ApiError, ChatRequest, Chunks, completion, parse_body, \
    parse_chat_request, turn_error

log = logging.getLogger("exoclaw.openai")

#: ``model`` that means "the agent the route picks"
ROUTE_MODEL = "exoclaw"
SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # proxies must not buffer the stream
}


#: refusals a client can repeat at full speed are logged once per interval
_throttled = Every(log, 10.0)


def error_response(rt: Runtime, err: ApiError) -> web.Response:
    rt.metrics.errors.labels("openai_api").inc()
    line = ("event=openai_error status=%d code=%s message=%s", err.status, err.code, quote(err.message))
    if err.code == "auth_rate_limited":
        _throttled(logging.WARNING, *line)
    elif err.code == "client_gone" or (err.status == 404 and err.code is None):  # nobody's mistake worth a line
        log.debug(*line)
    else:
        log.log(logging.WARNING if err.status >= 500 or err.status in (401, 403) else logging.INFO, *line)
    response = web.json_response(err.body(), status=err.status, headers=err.headers)
    return close_after(response) if err.status == 408 or err.code in ("invalid_body", "client_gone") else response


async def _check_access(request: web.Request, rt: Runtime) -> None:
    """The Origin rule of ``/ws`` (403), then the bearer token when one is configured (401, paced: 429)."""
    gw = rt.settings.gateway
    if not origin_allowed(request.headers.get("Origin"), gw.allowed_origins):
        raise ApiError(403, "origin not allowed", code="origin_not_allowed")
    if not gw.token:
        return
    throttle = request.app[AUTH_THROTTLE]
    ticket = await throttle.admit(request.remote)
    if ticket is None:
        wait = max(1, round(throttle.retry_after(request.remote)))
        raise ApiError(429, f"Too many failed authentication attempts from your address: retry in {wait} s.",
                       code="auth_rate_limited", headers={"Retry-After": str(wait)})
    ok = token_matches(gw.token, bearer_token(request.headers.get("Authorization")))
    throttle.settle(ticket, ok)
    if not ok:
        raise ApiError(401, "Incorrect or missing API key: send the gateway token as 'Authorization: Bearer <token>'.",
                       code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})


async def not_found(request: web.Request) -> web.Response:
    """Any other ``/v1/*`` path or method: OpenAI's own answer (a JSON 404, not aiohttp's plain 404/405)."""
    path = request.path if len(request.path) <= 200 else request.path[:200] + "…"
    return error_response(request.app[RUNTIME], ApiError(404, f"Invalid URL ({request.method} {path})"))


async def list_models(request: web.Request) -> web.Response:
    rt: Runtime = request.app[RUNTIME]
    try:
        await _check_access(request, rt)
    except ApiError as exc:
        return error_response(rt, exc)
    created = int(rt.started_at)
    ids = [ROUTE_MODEL, *(a for a in rt.settings.agents if a != ROUTE_MODEL)]
    return web.json_response({
        "object": "list",
        "data": [{"id": i, "object": "model", "created": created, "owned_by": "exoclaw"} for i in ids],
    })


async def _read(request: web.Request, rt: Runtime) -> tuple[ChatRequest, IncomingMessage, Route]:
    await _check_access(request, rt)
    gw = rt.settings.gateway
    try:
        raw = await read_body(request, gw.max_message_bytes + ENVELOPE_BYTES, gw.body_timeout_s)
    except BodyTooLarge:
        raise ApiError(413, f"Request too large: more than {gw.max_message_bytes} bytes of "
                       "message.", code="request_too_large") from None
    except BodyTimeout as exc:
        raise ApiError(408, f"The request body was not received within {exc.timeout_s:g} s.",
                       code="request_timeout") from None
    except BodyInvalid as exc:
        raise ApiError(400, f"We could not read the body of your request: {exc}.", code="invalid_body") from None
    except ClientGone:
        raise ApiError(400, "The connection closed before the request body arrived.", code="client_gone") from None
    req = parse_chat_request(parse_body(raw))
    peer = request.headers.get("X-Exoclaw-Peer") or "main"
    if len(peer) > MAX_ID_CHARS:
        raise ApiError(400, f"Invalid X-Exoclaw-Peer header: at most {MAX_ID_CHARS} characters.",
                       code="invalid_value")
    why = text.problem(peer, nul=True)
    if why is not None:  # header bytes that were not UTF-8 arrive as lone surrogates
        raise ApiError(400, f"Invalid X-Exoclaw-Peer header: {why}.", code="invalid_value")
    message = IncomingMessage(channel="openai", account=req.user, content=req.content, peer=peer,
                              system_extra=req.system)
    if req.model == ROUTE_MODEL:
        try:
            return req, message, await rt.route(message)
        except NoAgent as exc:
            raise ApiError(404, str(exc), code="model_not_found", param="model") from None
    if req.model in rt.settings.agents:
        # naming an agent is an explicit choice: bindings do not apply
        return req, message, Route(req.model, make_session_key(req.model, "openai", req.user, peer))
    raise ApiError(404, f"The model `{req.model}` does not exist: use an agent id or `{ROUTE_MODEL}` "
                   "(GET /v1/models lists them).", code="model_not_found", param="model")


class _Turn:
    """The events of one turn, as the request that started it sees them."""

    def __init__(self) -> None:
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.done = False  # the turn's own DONE arrived (else it was cancelled)
        self.error: ErrorEvent | None = None
        self.usage: UsageEvent | None = None

    def task_done(self, task: asyncio.Task[Any] | None = None) -> None:
        if not self.finished.done():  # also when the handler's wait was cancelled
            self.finished.set_result(None)

    async def sink(self, event: TurnEvent) -> None:
        raise NotImplementedError


class _Collected(_Turn):
    """Non-streaming: keep the text, answer once the turn is done."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []

    async def sink(self, event: TurnEvent) -> None:
        if isinstance(event, TextEvent):
            self.text.append(event.text)
        elif isinstance(event, UsageEvent):
            self.usage = event
        elif isinstance(event, ErrorEvent):
            self.error = event
        elif event is TURN_DONE:
            self.done = True
            self.task_done()


class _Streamed(_Turn):
    """Streaming: the first text opens the SSE response; every later event is written at once.

    The writes happen in the turn's task (as ``/ws`` sends its frames): no
    queue and no task switch between the provider's chunk and the socket.
    """

    def __init__(self, request: web.Request, chunks: Chunks, include_usage: bool):
        super().__init__()
        self.request, self.chunks, self.include_usage = request, chunks, include_usage
        self.resp: web.StreamResponse | None = None
        self.gone = False  # the client went away: the turn goes on, unwritten
        self.closed = False  # [DONE] was written

    async def _write(self, data: bytes) -> None:
        if self.gone:
            return
        try:
            if self.resp is None:
                resp = web.StreamResponse(status=200, headers=SSE_HEADERS)
                await resp.prepare(self.request)
                self.resp = resp
            await self.resp.write(data)
        except (ConnectionError, RuntimeError):  # the client went away mid-stream
            self.gone = True
            log.debug("event=client_gone stream=sse (the turn goes on and is stored)")

    async def close_with_error(self, err: ApiError) -> None:
        if not self.closed:
            self.closed = True
            await self._write(Chunks.error(err) + DONE)

    async def sink(self, event: TurnEvent) -> None:
        if isinstance(event, TextEvent):
            if self.resp is None:
                await self._write(self.chunks.role() + self.chunks.text(event.text))
            else:
                await self._write(self.chunks.text(event.text))
        elif isinstance(event, UsageEvent):
            self.usage = event
        elif isinstance(event, ErrorEvent):
            self.error = event
            if self.resp is not None:
                await self.close_with_error(turn_error(event))
        elif event is TURN_DONE:
            self.done = True
            if self.error is None and not self.closed:
                self.closed = True
                head = self.chunks.role() if self.resp is None else b""  # a turn with no text at all
                tail = self.chunks.usage(self._usage()) if self.include_usage else b""
                await self._write(head + self.chunks.stop() + tail + DONE)
            self.task_done()

    def _usage(self) -> dict[str, Any] | None:
        return self.usage.as_json() if self.usage is not None else None


async def chat_completions(request: web.Request) -> web.StreamResponse:
    rt: Runtime = request.app[RUNTIME]
    try:
        req, message, route = await _read(request, rt)
    except ApiError as exc:
        return error_response(rt, exc)
    cid, created = "chatcmpl-" + uuid.uuid4().hex, int(time.time())
    turn: _Turn = (_Streamed(request, Chunks(cid, created, req.model, req.include_usage), req.include_usage)
                   if req.stream else _Collected())
    # the turn is the runtime's task: if this handler is cancelled (the client
    # went away) only the wait below ends, the turn completes and is stored
    replaces = await regenerated_turn(rt, route, req.content, req.previous_reply)
    (await rt.submit(message, turn.sink, route, replaces=replaces)).add_done_callback(turn.task_done)
    await turn.finished
    if isinstance(turn, _Streamed) and turn.resp is not None:
        if not turn.done:  # cancelled after output started (shutdown)
            await turn.close_with_error(turn_error(None))
        if turn.error is not None or not turn.done:
            rt.metrics.errors.labels("openai_api").inc()
        try:
            await turn.resp.write_eof()
        except (ConnectionError, RuntimeError):
            pass
        return turn.resp
    if turn.error is not None or not turn.done:
        return error_response(rt, turn_error(turn.error))
    text = "".join(turn.text) if isinstance(turn, _Collected) else ""
    usage = turn.usage.as_json() if turn.usage is not None else None
    return web.json_response(completion(cid, created, req.model, text, usage), dumps=_dumps)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)
