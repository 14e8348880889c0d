"""The HTTP of WASM plugins, made by the host: every hop is checked against the grant (SPEC §6).

Why not Extism's own ``http_request``: it checks ``allowed_hosts`` for the
first URL only, then its HTTP client (ureq) follows redirects wherever they
lead — a plugin granted ``http:127.0.0.1`` reached an ungranted host
through a ``302`` (issue 16). Extism links an embedder's host functions
after its kernel's, with shadowing allowed, so the three functions defined
here in the kernel's own module ``extism:host/env`` replace
``http_request``, ``http_status_code`` and ``http_headers`` for every
plugin, whichever PDK built it. The manifest's ``allowed_hosts`` stays
empty: were these ever not linked, Extism would deny every request.

What a plugin gets is Extism's ABI (the body's offset, then the status);
the rules behind it:

* ``http`` and ``https`` only; the host of the URL and of every redirect
  must be granted (:func:`~.capabilities.host_granted`). A hop to a host
  not granted is never requested: the call fails (``host_denied``).
* Redirects are followed for GET and HEAD (a 301/302/303 after a POST
  becomes a GET, as browsers do), at most :data:`MAX_REDIRECTS`;
  ``Authorization`` and ``Cookie`` are dropped when the host changes. A
  redirect not followed (a 307 of a POST, too many) goes back to the
  plugin as its 3xx.
* The call's remaining ``timeout_ms`` bounds the whole request — connect,
  every read, the body: a watchdog cuts the connection at the deadline
  (a trickling server cannot hold a worker). The body is capped at
  :attr:`~.callctx.CallContext.max_response_bytes`.
* A refused request, a network failure or the deadline fail the whole call
  (``host_denied``, ``http``, ``timeout``), as Extism's own did.

All of it blocks, in the call's worker thread.
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import extism

from .callctx import CallContext, CallFailure
from .capabilities import host_granted
from .hostfns import give

ENV = "extism:host/env"
MAX_REDIRECTS = 5
USER_AGENT = "exoclaw-wasm"
_CHUNK = 64 * 1024
_CREDENTIAL_HEADERS = ("authorization", "cookie", "proxy-authorization")


class Denied(Exception):
    """A URL the grant does not allow (``str()`` says which, without its query)."""


class TooLarge(Exception):
    pass


def shown(url: str) -> str:
    """A URL as it may be logged or shown: no user info, no query, no fragment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port else ""
        path = parts.path if len(parts.path) <= 200 else parts.path[:199] + "…"
        return f"{parts.scheme}://{host}{port}{path}"
    except ValueError:
        return "(an invalid URL)"


def check(url: str, hosts: tuple[str, ...], came_from: str | None = None) -> None:
    """Raise :class:`Denied` unless ``url`` is http(s) to a granted host."""
    via = f" (redirected from {shown(came_from)})" if came_from else ""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        raise Denied(f"{shown(url)} is not a valid URL{via}") from None
    if parts.scheme not in ("http", "https"):
        raise Denied(f"{shown(url)}: only http and https URLs may be requested{via}")
    if not host_granted(host, hosts):
        granted = ", ".join(f"http:{h}" for h in hosts) or "no http: grant"
        raise Denied(f"{shown(url)} is not granted ({granted}){via}")


# ---------------------------------------------------------------- the request


class _Tracked:
    """A connection that tells its call about its socket, so the watchdog can cut it."""

    exo_ctx: CallContext

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        self.exo_ctx.track(self.sock)  # type: ignore[attr-defined]

    def close(self) -> None:
        sock = getattr(self, "sock", None)
        if sock is not None:
            self.exo_ctx.untrack(sock)
        super().close()  # type: ignore[misc]


class _HTTPConnection(_Tracked, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_Tracked, http.client.HTTPSConnection):
    pass


def _factory(cls: type, ctx: CallContext) -> Any:
    def make(*args: Any, **kwargs: Any) -> Any:
        conn = cls(*args, **kwargs)
        conn.exo_ctx = ctx
        return conn
    return make


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, ctx: CallContext) -> None:
        super().__init__()
        self.ctx = ctx

    def http_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(_factory(_HTTPConnection, self.ctx), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, ctx: CallContext) -> None:
        self.tls = ssl.create_default_context()
        super().__init__(context=self.tls)
        self.ctx = ctx

    def https_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(_factory(_HTTPSConnection, self.ctx), req, context=self.tls)


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to a granted host; drops credentials when the host changes."""

    max_redirections = MAX_REDIRECTS

    def __init__(self, hosts: tuple[str, ...]) -> None:
        self.hosts = hosts

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        try:
            check(newurl, self.hosts, came_from=req.full_url)
        except Denied:
            fp.close()
            raise
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and (urlsplit(newurl).hostname or "") != (urlsplit(req.full_url).hostname or ""):
            for name in list(new.headers):
                if name.lower() in _CREDENTIAL_HEADERS:
                    del new.headers[name]
        return new


def _opener(ctx: CallContext) -> urllib.request.OpenerDirector:
    # built by hand: no file:, ftp: or data: handler is ever present
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(), urllib.request.UnknownHandler(), _HTTPHandler(ctx), _HTTPSHandler(ctx),
        urllib.request.HTTPDefaultErrorHandler(), _Redirects(ctx.hosts), urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    opener.addheaders = [("User-Agent", USER_AGENT)]
    return opener


def perform(ctx: CallContext, spec: Any, body: bytes | None) -> tuple[int, dict[str, str], bytes]:
    """Make the request a plugin described (``{"url", "method", "headers"}``); blocking.

    Returns ``(status, headers, body)``; raises :class:`Denied`,
    :class:`TooLarge`, ``ValueError`` (a malformed request) or the network's
    ``OSError``.
    """
    if not isinstance(spec, dict) or not isinstance(spec.get("url"), str):
        raise ValueError('the request must be {"url": string, "method": string, "headers": {...}}')
    url = spec["url"]
    method = spec.get("method") or "GET"
    headers = spec.get("headers") or {}
    if not isinstance(method, str) or not isinstance(headers, dict):
        raise ValueError("method must be a string and headers an object")
    check(url, ctx.hosts)
    request = urllib.request.Request(
        url, data=body, method=method.upper(),
        headers={str(k): str(v) for k, v in headers.items() if isinstance(v, (str, int, float))},
    )
    remaining = ctx.remaining()
    if remaining <= 0:
        raise TimeoutError("no time left")
    watchdog = threading.Timer(remaining, ctx.stop, args=(CallFailure("timeout"),))
    watchdog.daemon = True
    watchdog.start()
    try:
        try:
            response: Any = _opener(ctx).open(request, timeout=remaining)
            status = int(response.status)
        except urllib.error.HTTPError as exc:  # a 4xx/5xx, or a redirect not followed: the plugin's business
            response, status = exc, int(exc.code)
        try:
            answer_headers = _headers(response.headers)
            data = b"" if getattr(response, "fp", True) is None else _read(response, ctx)
        finally:
            response.close()
    finally:
        watchdog.cancel()
    return status, answer_headers, data


def _headers(message: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in (message.items() if message is not None else ()):
        key = str(name).lower()
        out[key] = f"{out[key]}, {value}" if key in out else str(value)
    return out


def _read(response: Any, ctx: CallContext) -> bytes:
    chunks: list[bytes] = []
    size = 0
    read = getattr(response, "read1", None) or response.read
    while ctx.failure is None:
        chunk = read(_CHUNK)
        if not chunk:
            break
        size += len(chunk)
        if size > ctx.max_response_bytes:
            raise TooLarge(f"the response is larger than {ctx.max_response_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def describe(exc: BaseException) -> str:
    """A network failure in a few words (never a URL's query or a header value)."""
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        exc = exc.reason if isinstance(exc.reason, BaseException) else Exception(str(exc.reason))
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())[:200]


# ---------------------------------------------------------------- the host functions


def _context(current: Any) -> CallContext | None:
    """The call's context (``None``: not one of our calls, or stopped: nothing is done)."""
    ctx = current.host_context()
    return ctx if isinstance(ctx, CallContext) and ctx.in_guest() else None


def _bytes_at(current: Any, offset: int, limit: int) -> bytes:
    if not offset:
        return b""
    mem = current.memory_at_offset(offset)
    if mem.length > limit:
        raise TooLarge(f"the request body is larger than {limit} bytes")
    return bytes(current.memory(mem)[:]) if mem.length else b""


def _http_request(current: Any, params: list[Any], results: list[Any], *user_data: Any) -> None:
    results[0].value = 0
    ctx = None
    try:
        ctx = _context(current)
        if ctx is None:  # not one of our calls: nothing is granted
            return
        ctx.http_status, ctx.http_headers = 0, {}
        spec = json.loads(_bytes_at(current, params[0].value, 1024 * 1024) or b"null")
        body = _bytes_at(current, params[1].value, ctx.max_response_bytes) if params[1].value else None
        status, headers, data = perform(ctx, spec, body)
        if ctx.failure is not None:
            return
        ctx.http_status, ctx.http_headers = status, headers
        if not give(current, results[0], data):
            ctx.stop(CallFailure("oom", f"a response of {len(data)} bytes does not fit in the plugin's memory"))
    except Exception as exc:  # noqa: BLE001 - nothing may escape into the guest
        if ctx is not None:
            ctx.stop(_failure(exc))


def _failure(exc: BaseException) -> CallFailure:
    if isinstance(exc, Denied):
        return CallFailure("host_denied", str(exc))
    if isinstance(exc, (TooLarge, ValueError)):
        return CallFailure("http", " ".join(str(exc).split())[:200])
    return CallFailure("http", describe(exc))


def _http_status_code(current: Any, params: list[Any], results: list[Any], *user_data: Any) -> None:
    results[0].value = 0
    try:
        ctx = _context(current)
        if ctx is not None:
            results[0].value = int(ctx.http_status)
    except Exception:  # noqa: BLE001
        pass


def _http_headers(current: Any, params: list[Any], results: list[Any], *user_data: Any) -> None:
    results[0].value = 0
    try:
        ctx = _context(current)
        if ctx is not None and ctx.http_headers:
            give(current, results[0], json.dumps(ctx.http_headers).encode())
    except Exception:  # noqa: BLE001
        results[0].value = 0


_lock = threading.Lock()
_functions: list[Any] | None = None


def http_functions() -> list[Any]:
    """The three functions replacing the kernel's HTTP (made once per process, like the kv ones)."""
    global _functions
    with _lock:
        if _functions is None:
            i32, i64 = extism.ValType.I32, extism.ValType.I64
            _functions = [
                extism.host_fn(name="http_request", namespace=ENV, signature=([i64, i64], [i64]))(_http_request),
                extism.host_fn(name="http_status_code", namespace=ENV, signature=([], [i32]))(_http_status_code),
                extism.host_fn(name="http_headers", namespace=ENV, signature=([], [i64]))(_http_headers),
            ]
        return list(_functions)
