"""CORS for the OpenAI-compatible face: a chat UI in a browser on an allowed origin may call it.

The same Origin rule as ``/ws`` (SPEC §4): loopback origins and those in
``[gateway] allowed_origins``. An allowed origin gets the CORS headers (and
its preflight is answered); any other origin is refused by the handlers
(403) and gets no CORS headers, so the browser blocks the page too.
"""

from __future__ import annotations

from typing import MutableMapping

from aiohttp import web

from .auth import origin_allowed
from .keys import RUNTIME

ALLOW_HEADERS = "Authorization, Content-Type, X-Exoclaw-Peer"
ALLOW_METHODS = "GET, POST, OPTIONS"


def _allowed_origin(request: web.Request) -> str | None:
    origin = request.headers.get("Origin")
    if origin and request.path.startswith("/v1/"):
        if origin_allowed(origin, request.app[RUNTIME].settings.gateway.allowed_origins):
            return origin
    return None


def _add_headers(headers: MutableMapping[str, str], origin: str) -> None:
    headers["Access-Control-Allow-Origin"] = origin
    headers["Vary"] = "Origin"


async def preflight(request: web.Request) -> web.Response:
    origin = _allowed_origin(request)
    if origin is None:
        return web.json_response({"error": {"message": "origin not allowed", "type": "invalid_request_error",
                                             "code": "origin_not_allowed", "param": None}}, status=403)
    resp = web.Response(status=204)
    _add_headers(resp.headers, origin)
    resp.headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
    resp.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
    resp.headers["Access-Control-Max-Age"] = "600"
    return resp


async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Add the CORS headers to every /v1 response (streamed ones too) for an allowed origin."""
    origin = _allowed_origin(request)
    if origin is not None:
        _add_headers(response.headers, origin)
