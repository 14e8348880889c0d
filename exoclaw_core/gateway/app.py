"""The aiohttp application: routes, start-up of the runtime, clean shutdown."""

from __future__ import annotations

import asyncio
import weakref

from aiohttp import WSCloseCode, web

from exoclaw_hooks import StoreUnavailable

from ..logs import redact
from ..runtime import Runtime
from . import cors, openai_api
from .auth import AuthThrottle
from .keys import AUTH_THROTTLE, RUNTIME, SOCKETS
from .limits import ENVELOPE_BYTES
from .webhook import webhook_handler
from .ws import ws_handler


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


#: seconds /readyz waits for the store's answer before calling it unreachable
READY_STORE_TIMEOUT_S = 2.0


async def readyz(request: web.Request) -> web.Response:
    """Ready: started, not stopping, and the store answers (a lost database takes the gateway out of rotation)."""
    rt = request.app[RUNTIME]
    if not rt.ready:
        return web.json_response({"ready": False}, status=503)
    ping = getattr(rt.store, "ping", None)
    if ping is not None:
        try:
            await asyncio.wait_for(ping(), READY_STORE_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - the reason, in one line
            reason = str(exc) if isinstance(exc, StoreUnavailable) else "the store does not answer"
            return web.json_response({"ready": False, "reason": redact(reason)}, status=503)
    return web.json_response({"ready": True})


async def metrics(request: web.Request) -> web.Response:
    body = request.app[RUNTIME].metrics.render()
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


def create_app(rt: Runtime) -> web.Application:
    """The application, before start-up (routes only)."""
    app = web.Application(client_max_size=rt.settings.gateway.max_message_bytes + ENVELOPE_BYTES)
    app[RUNTIME] = rt
    app[SOCKETS] = weakref.WeakSet()
    app[AUTH_THROTTLE] = AuthThrottle()
    app.router.add_get("/ws", ws_handler)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/v1/chat/completions", openai_api.chat_completions)
    app.router.add_get("/v1/models", openai_api.list_models)
    app.router.add_route("OPTIONS", "/v1/{tail:.*}", cors.preflight)
    app.on_response_prepare.append(cors.on_prepare)
    app.router.add_post("/webhook/{channel}", webhook_handler)
    app.on_shutdown.append(_close_sockets)
    app.on_cleanup.append(_stop_runtime)
    return app


async def build_app(rt: Runtime) -> web.Application:
    """Create the app and start the runtime (plugins add their routes during start-up)."""
    app = create_app(rt)
    await rt.start(app)
    # last, so that a plugin's own /v1 routes come first: any other /v1 path or method is OpenAI's 404
    app.router.add_route("*", "/v1/{tail:.*}", openai_api.not_found)
    return app


async def _close_sockets(app: web.Application) -> None:
    rt = app[RUNTIME]
    # turns in flight finish (bounded) while their clients can still read them
    await rt.stop(rt.shutdown_grace_s)
    for ws in list(app[SOCKETS]):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


async def _stop_runtime(app: web.Application) -> None:
    store = app[RUNTIME].store
    aclose = getattr(store, "aclose", None)
    if aclose is not None:  # on this loop: a pooled store's connections belong to it (SQLite: in a thread)
        await aclose()
        return
    close = getattr(store, "close", None)
    if close is not None:  # it waits for the store's thread: not on the event loop
        await asyncio.to_thread(close)
