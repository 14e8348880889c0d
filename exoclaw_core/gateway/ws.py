"""``GET /ws``: authentication, framing and dispatch of one WebSocket connection.

**Closing mid-write (issue 22).** A client may go away at any moment,
also while a frame is being written. Every write goes through
:meth:`Connection.send`, which drops frames once the client is gone and
never lets a write's failure escape unretrieved: with permessage-deflate,
aiohttp compresses a large frame (> 16 KiB) in a task of its own and awaits
it shielded; if the awaiting request were cancelled meanwhile (a closing
connection cancels its requests), that task's "Cannot write to closing
transport" would be nobody's and asyncio would log it with a traceback. So
such a frame is written by a task of ours that is never cancelled and
consumes its own outcome. A disconnect is one debug line.

Compression is ``[gateway] ws_compression`` (off by default: see the README,
"WebSocket compression", and ``benches/bench_ws_compression.py``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Awaitable, Callable

from aiohttp import WSMsgType, web

from exoclaw_hooks import InvalidParams, Route, make_session_key

from ..agent.events import TurnEvent
from ..agent.loop import CANCELLED_BY_CLIENT
from ..logs import Every, quote
from ..runtime import NoAgent, Runtime
from . import protocol
from .auth import AuthThrottle, origin_allowed, token_matches
from .keys import AUTH_THROTTLE, RUNTIME, SOCKETS
from .listener import waiting_for_client
from .methods import METHODS

log = logging.getLogger("exoclaw.ws")

AUTH_FAILED = json.dumps({"error": "auth_failed", "code": 4001})
#: on the upgrade response: "token" when the first frame must be the token, else "none" — so a
#: client without a token fails at once instead of waiting out the authentication timeout
AUTH_HEADER = "X-Exoclaw-Auth"
#: a str this long may exceed aiohttp's 16 KiB threshold for compressing in a task once UTF-8 encoded
_ASYNC_COMPRESS_CHARS = 16 * 1024 // 4
#: failed logins past the throttle's burst are logged once per interval
_auth_refused = Every(log, 10.0)


class Connection:
    """One client: sends frames (dropping them once the client is gone) and tracks its requests."""

    def __init__(self, ws: web.WebSocketResponse, rt: Runtime):
        self.ws = ws
        self.rt = rt
        self.tasks: set[asyncio.Task[Any]] = set()
        #: this connection's turns in flight, by chat.send id (what chat.cancel may cancel)
        self.turns: dict[str, asyncio.Task[Any]] = {}
        self.writes: set[asyncio.Task[None]] = set()
        self.gone = False

    async def send(self, text: str) -> None:
        if self.gone or self.ws.closed:
            return
        if self.ws.compress and len(text) > _ASYNC_COMPRESS_CHARS:
            # see the module docstring: a write that no cancellation can orphan
            write = asyncio.get_running_loop().create_task(self._write(text))
            self.writes.add(write)
            write.add_done_callback(self.writes.discard)
            await asyncio.shield(write)
        else:
            await self._write(text)

    async def _write(self, text: str) -> None:
        try:
            await self.ws.send_str(text)
        except (ConnectionError, RuntimeError):  # the client went away mid-stream
            self.gone = True

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


async def ws_handler(request: web.Request) -> web.StreamResponse:
    rt: Runtime = request.app[RUNTIME]
    gw = rt.settings.gateway
    if not origin_allowed(request.headers.get("Origin"), gw.allowed_origins):
        log.warning("event=ws_refused reason=origin origin=%s", quote(request.headers.get("Origin", "")))
        raise web.HTTPForbidden(text="origin not allowed\n")
    # aiohttp closes a connection whose frame exceeds max_msg_size; we accept
    # frames up to a hard cap and answer the ones above max_message_bytes with
    # an error, so one big frame does not cost the client its connection.
    ws = web.WebSocketResponse(max_msg_size=max(gw.max_message_bytes * 8, 8 * 1024 * 1024), heartbeat=30,
                               compress=gw.ws_compression)
    ws.headers[AUTH_HEADER] = "token" if gw.token else "none"
    await ws.prepare(request)
    sockets = request.app[SOCKETS]
    sockets.add(ws)
    rt.metrics.connections.inc()
    rt.connections += 1
    conn = Connection(ws, rt)
    try:
        if gw.token and not await _authenticate(request, ws, gw.token, rt.auth_timeout_s):
            return ws
        await conn.send(json.dumps({"ok": True, "version": _version()}))
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                _handle_text(conn, msg.data)
            elif msg.type == WSMsgType.BINARY:
                await conn.send(protocol.error_frame("0", "parse error: binary frames are not supported; send JSON text"))
            elif msg.type == WSMsgType.ERROR:
                break
    finally:
        rt.metrics.connections.dec()
        rt.connections -= 1
        sockets.discard(ws)
        # requests of this connection that are not turns (status, history…) are
        # pointless now; turns run on in the runtime and are stored.
        for task in list(conn.tasks):
            task.cancel()
        error = ws.exception()
        log.debug("event=ws_closed code=%s requests_cancelled=%d%s", ws.close_code, len(conn.tasks),
                  f" error={quote(f'{type(error).__name__}: {error}')}" if error is not None else "")
    return ws


def _version() -> str:
    from .. import __version__

    return __version__


async def _authenticate(request: web.Request, ws: web.WebSocketResponse, token: str, timeout: float) -> bool:
    """The first frame must carry the token (SPEC §4); failures are paced per address (issue 16)."""
    given: object = None
    try:
        with waiting_for_client(request):  # a client that sends nothing may be shed at the connection cap
            msg = await ws.receive(timeout=timeout)
        if msg.type == WSMsgType.TEXT:
            try:
                obj = json.loads(msg.data)
            except (ValueError, RecursionError):
                obj = None
            given = obj.get("token") if isinstance(obj, dict) else None
    except asyncio.TimeoutError:
        pass
    ok = False
    refusal = AUTH_FAILED
    if given is not None:  # an attempt: it waits its address's turn, then is checked
        throttle: AuthThrottle = request.app[AUTH_THROTTLE]
        ticket = await throttle.admit(request.remote)
        if ticket is None:
            wait = max(1, round(throttle.retry_after(request.remote)))
            refusal = json.dumps({"error": "auth_failed", "code": 4001, "retry_after": wait})
            _auth_refused(logging.WARNING, "event=auth_refused reason=too_many_failures addr=%s retry_after=%d",
                          quote(request.remote), wait)
        else:
            ok = token_matches(token, given)
            throttle.settle(ticket, ok)
    if not ok:
        if given is not None and refusal is AUTH_FAILED:
            log.warning("event=auth_failed addr=%s", quote(request.remote))
        elif given is None:  # no attempt: nothing, or no token, within the time allowed
            log.debug("event=auth_failed reason=no_token addr=%s", quote(request.remote))
        if not ws.closed:
            try:
                await ws.send_str(refusal)
                await ws.close(code=4001, message=b"auth_failed")
            except (ConnectionError, RuntimeError):
                pass
    return ok


def _handle_text(conn: Connection, raw: str) -> None:
    limit = conn.rt.settings.gateway.max_message_bytes
    if len(raw) > limit // 4 and len(raw.encode("utf-8")) > limit:
        conn.spawn(conn.send(protocol.error_frame("0", f"message too large: more than {limit} bytes")))
        return
    try:
        req = protocol.parse_request(raw)
    except protocol.FrameError as exc:
        conn.spawn(conn.send(protocol.error_frame(exc.id, exc.text)))
        return
    if req.method == "chat.send":
        conn.spawn(_chat_send(conn, req))
        return
    if req.method == "chat.cancel":
        conn.spawn(_call(conn, req, lambda: _chat_cancel(conn, req.params)))
        return
    core = METHODS.get(req.method)
    if core is not None:
        conn.spawn(_call(conn, req, lambda: core(conn.rt, req.params)))
        return
    plugin = conn.rt.methods.get(req.method)
    if plugin is None:
        conn.spawn(conn.send(protocol.error_frame(req.id, protocol.unknown_method(req.method))))
        return
    conn.spawn(_call(conn, req, lambda: plugin(req.params)))


async def _call(conn: Connection, req: protocol.Request, method: Callable[[], Awaitable[Any]]) -> None:
    # the method's coroutine is made here, in the task: a task cancelled before it runs (its
    # connection closed) leaves no coroutine that was never awaited
    try:
        result = await method()
        frame = protocol.result_frame(req.id, result)
    except InvalidParams as exc:
        frame = protocol.error_frame(req.id, str(exc))
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - one failing method must not cost the connection
        log.error("event=method_failed method=%s error=%s", quote(req.method), quote(f"{type(exc).__name__}: {exc}"))
        conn.rt.metrics.errors.labels("method").inc()
        frame = protocol.error_frame(req.id, f"internal error in {req.method}")
    await conn.send(frame)


async def _chat_send(conn: Connection, req: protocol.Request) -> None:
    rid = req.id

    async def sink(event: TurnEvent) -> None:
        await conn.send(protocol.turn_frame(rid, event))

    try:
        message = protocol.parse_chat_send(req.params)
        turn = await conn.rt.submit(message, sink, _chosen_route(conn.rt, message, req.params.get("agent")))
    except (InvalidParams, NoAgent) as exc:
        await conn.send(protocol.error_frame(rid, str(exc)))
        return
    conn.turns[rid] = turn
    turn.add_done_callback(lambda t: conn.turns.pop(rid) if conn.turns.get(rid) is t else None)
    # the turn is owned by the runtime, not by this connection: shield it so a
    # disconnect (which cancels this request's task) lets it finish and store
    await asyncio.shield(turn)


def _chosen_route(rt: Runtime, message: Any, agent: Any) -> Route | None:
    """``chat.send``'s optional ``agent``: naming an agent is an explicit choice, bindings do not apply."""
    if agent is None:
        return None
    if not isinstance(agent, str) or agent not in rt.settings.agents:
        raise InvalidParams("agent", f"unknown agent, must be one of {', '.join(rt.settings.agents)}")
    return Route(agent, make_session_key(agent, message.channel, message.account, message.peer))


async def _chat_cancel(conn: Connection, params: dict[str, Any]) -> dict[str, bool]:
    """``chat.cancel {"id"}``: cancel this connection's turn in flight with that ``chat.send`` id.

    ``{"cancelled": true}``: its stream ends with an error and ``done``, the
    upstream call is closed and nothing is stored. ``false``: no such turn
    (finished already, or another connection's) or too late (committing).
    """
    rid = params.get("id")
    if not isinstance(rid, str):
        raise InvalidParams("id", "must be the id of a chat.send request (a string)")
    turn = conn.turns.get(rid)
    return {"cancelled": turn is not None and conn.rt.cancel(turn, CANCELLED_BY_CLIENT)}
