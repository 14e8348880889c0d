"""``GET /ws``: authentication, framing and dispatch of one WebSocket connection."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import WSMsgType, web

from exoclaw_hooks import InvalidParams, Route, make_session_key

from ..agent.events import TurnEvent
from ..agent.loop import CANCELLED_BY_CLIENT
from ..logs import quote
from ..runtime import NoAgent, Runtime
from . import protocol
from .auth import origin_allowed, token_matches
from .keys import RUNTIME, SOCKETS
from .methods import METHODS

log = logging.getLogger("exoclaw.ws")

AUTH_FAILED = json.dumps({"error": "auth_failed", "code": 4001})
#: on the upgrade response: "token" when the first frame must be the token, else "none" — so a
#: client without a token fails at once instead of waiting out the authentication timeout
AUTH_HEADER = "X-Exoclaw-Auth"


class Connection:
    """One client: sends frames (dropping them once the client is gone) and tracks its requests."""

    def __init__(self, ws: web.WebSocketResponse, rt: Runtime):
        self.ws = ws
        self.rt = rt
        self.tasks: set[asyncio.Task[Any]] = set()
        #: this connection's turns in flight, by chat.send id (what chat.cancel may cancel)
        self.turns: dict[str, asyncio.Task[Any]] = {}

    async def send(self, text: str) -> None:
        if self.ws.closed:
            return
        try:
            await self.ws.send_str(text)
        except (ConnectionError, RuntimeError):  # the client went away mid-stream
            pass

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
    ws = web.WebSocketResponse(max_msg_size=max(gw.max_message_bytes * 8, 8 * 1024 * 1024), heartbeat=30)
    ws.headers[AUTH_HEADER] = "token" if gw.token else "none"
    await ws.prepare(request)
    sockets = request.app[SOCKETS]
    sockets.add(ws)
    rt.metrics.connections.inc()
    rt.connections += 1
    conn = Connection(ws, rt)
    try:
        if gw.token and not await _authenticate(ws, gw.token, rt.auth_timeout_s):
            return ws
        await conn.send(json.dumps({"ok": True, "version": _version()}))
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                _handle_text(conn, msg.data)
            elif msg.type == WSMsgType.BINARY:
                await conn.send(protocol.error_frame("0", "parse error: binary frames are not supported; send JSON text"))
            elif msg.type == WSMsgType.ERROR:
                log.info("event=ws_error error=%s", quote(str(ws.exception())))
                break
    finally:
        rt.metrics.connections.dec()
        rt.connections -= 1
        sockets.discard(ws)
        # requests of this connection that are not turns (status, history…) are
        # pointless now; turns run on in the runtime and are stored.
        for task in list(conn.tasks):
            task.cancel()
    return ws


def _version() -> str:
    from .. import __version__

    return __version__


async def _authenticate(ws: web.WebSocketResponse, token: str, timeout: float) -> bool:
    try:
        msg = await ws.receive(timeout=timeout)
        ok = False
        if msg.type == WSMsgType.TEXT:
            try:
                obj = json.loads(msg.data)
            except (ValueError, RecursionError):
                obj = None
            ok = isinstance(obj, dict) and token_matches(token, obj.get("token"))
    except asyncio.TimeoutError:
        ok = False
    if not ok:
        log.warning("event=auth_failed")
        if not ws.closed:
            try:
                await ws.send_str(AUTH_FAILED)
            except (ConnectionError, RuntimeError):
                pass
            await ws.close(code=4001, message=b"auth_failed")
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
        conn.spawn(_call(conn, req, _chat_cancel(conn, req.params)))
        return
    core = METHODS.get(req.method)
    if core is not None:
        conn.spawn(_call(conn, req, core(conn.rt, req.params)))
        return
    plugin = conn.rt.methods.get(req.method)
    if plugin is None:
        conn.spawn(conn.send(protocol.error_frame(req.id, f"unknown method: {req.method}")))
        return
    conn.spawn(_call(conn, req, plugin(req.params)))


async def _call(conn: Connection, req: protocol.Request, pending: Any) -> None:
    try:
        result = await pending
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
