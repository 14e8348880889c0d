"""CORS for the OpenAI-compatible face: a chat UI in a browser on an allowed origin may call it.

The same Origin rule as ``/ws`` (SPEC §4): loopback origins and those in
``[gateway] allowed_origins``. An allowed origin gets the CORS headers (and
its preflight is answered); any other origin is refused by the handlers
(403) and gets no CORS headers, so the browser blocks the page too.

A preflight is allowed every request header the page asks for that is safe
to let a page set (issue 20: the OpenAI SDKs send ``x-stainless-*`` headers):
any well-formed name except hop-by-hop, proxy, forwarding and cookie headers.
The allowed names are listed one by one — never ``*`` — and no
``Access-Control-Allow-Credentials`` is ever sent: the token travels in
``Authorization``, never in a cookie.
"""

from __future__ import annotations

import re
from typing import MutableMapping

from aiohttp import web

from .auth import origin_allowed
from .keys import RUNTIME

#: always allowed, whether asked for or not
ALLOW_HEADERS = ("Authorization", "Content-Type", "X-Exoclaw-Peer")
ALLOW_METHODS = "GET, POST, OPTIONS"
#: request headers a page may never set through a preflight of ours
NEVER_ALLOWED = frozenset({
    "connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host", "content-length",
    "expect", "cookie", "cookie2", "forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto",
    "x-real-ip", "x-http-method-override", "origin", "referer",
})
_NEVER_PREFIXES = ("proxy-", "sec-", "access-control-")
#: a header name as real clients write them (a subset of RFC 9110's token: never ``*``), lowercased
_HEADER_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}\Z")
#: at most this many requested names are considered
MAX_REQUESTED = 64


def allowed_headers(requested: str | None) -> str:
    """``Access-Control-Allow-Headers`` for a preflight asking for ``requested``."""
    names = list(ALLOW_HEADERS)
    seen = {n.lower() for n in names}
    for item in (requested or "").split(",")[:MAX_REQUESTED]:
        name = item.strip().lower()
        if (name in seen or not _HEADER_NAME.match(name) or name in NEVER_ALLOWED
                or name.startswith(_NEVER_PREFIXES)):
            continue
        seen.add(name)
        names.append(name)
    return ", ".join(names)


def _allowed_origin(request: web.Request) -> str | None:
    origin = request.headers.get("Origin")
    if origin and request.path.startswith("/v1/"):
        if origin_allowed(origin, request.app[RUNTIME].settings.gateway.allowed_origins):
            return origin
    return None


def _add_headers(headers: MutableMapping[str, str], origin: str) -> None:
    headers["Access-Control-Allow-Origin"] = origin
    vary = headers.get("Vary")
    if not vary:
        headers["Vary"] = "Origin"
    elif "origin" not in vary.lower():
        headers["Vary"] = f"{vary}, Origin"


async def preflight(request: web.Request) -> web.Response:
    origin = _allowed_origin(request)
    if origin is None:
        return web.json_response({"error": {"message": "origin not allowed", "type": "invalid_request_error",
                                             "code": "origin_not_allowed", "param": None}}, status=403)
    resp = web.Response(status=204)
    _add_headers(resp.headers, origin)
    resp.headers["Vary"] = "Origin, Access-Control-Request-Headers"
    resp.headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
    resp.headers["Access-Control-Allow-Headers"] = allowed_headers(request.headers.get("Access-Control-Request-Headers"))
    resp.headers["Access-Control-Max-Age"] = "600"
    return resp


async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Add the CORS headers to every /v1 response (streamed ones too) for an allowed origin."""
    origin = _allowed_origin(request)
    if origin is not None:
        _add_headers(response.headers, origin)
