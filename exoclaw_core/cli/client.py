"""A WebSocket client of the gateway for the terminal commands (``chat``, ``status``).

One reader task takes every frame off the socket (so the connection answers
pings while the user types) and hands it to the request waiting for its id.
Connecting fails with one sentence, at once: unreachable, refused, a token
the gateway wants and we lack (it says so on the upgrade, ``X-Exoclaw-Auth``),
or a wrong token.
"""

from __future__ import annotations

import asyncio
import getpass
import itertools
import json
import os
import sys
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

from .errors import UserError

DEFAULT_URL = "ws://127.0.0.1:7200/ws"
AUTH_HEADER = "X-Exoclaw-Auth"
AUTH_FAILED = "authentication failed: the gateway refused the token (check --token or EXOCLAW_TOKEN)"
#: the end of a request's frames: the connection is gone
_CLOSED = object()


def ws_url(url: str | None) -> str:
    """Accept a ws(s):// URL or an http(s)://HOST:PORT base (mapped to its /ws)."""
    url = url or DEFAULT_URL
    parts = urlsplit(url if "://" in url else "ws://" + url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss"):
        raise UserError(f"--url must be a ws://, wss://, http:// or https:// URL (got {url!r})")
    path = parts.path if parts.path not in ("", "/") else "/ws"
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


def local_account() -> str:
    """Who is at this terminal: ``$USER``, else the login name, else ``local``."""
    if os.environ.get("USER"):
        return os.environ["USER"]
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001
        return "local"


def _reason(exc: BaseException) -> str:
    cause = getattr(exc, "os_error", None) or exc.__cause__ or exc
    text = getattr(cause, "strerror", None) or str(cause)
    return text.lower() if text else type(exc).__name__


class Client:
    """``async with Client(url, token) as c: await c.call("status")``."""

    def __init__(self, url: str | None, token: str | None):
        self.url = ws_url(url)
        self.token = token if token is not None else os.environ.get("EXOCLAW_TOKEN") or None
        self._ids = itertools.count(1)
        self._waiting: dict[str, asyncio.Queue[Any]] = {}
        self._reader: asyncio.Task[None] | None = None
        self.closed_because: str | None = None
        self.session: Any = None
        self.ws: Any = None

    async def __aenter__(self) -> "Client":
        try:
            await self._connect()
        except BaseException:
            await self.close()
            raise
        self._reader = asyncio.get_running_loop().create_task(self._pump())
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
            self._reader = None
        if self.ws is not None:
            await self.ws.close()
        if self.session is not None:
            await self.session.close()

    async def _connect(self) -> None:
        import aiohttp

        self.session = aiohttp.ClientSession()
        try:
            self.ws = await self.session.ws_connect(self.url, max_msg_size=0)
        except aiohttp.WSServerHandshakeError as exc:
            raise UserError(f"the gateway at {self.url} refused the connection (HTTP {exc.status})") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise UserError(f"cannot reach the gateway at {self.url}: {_reason(exc)}") from None
        response = getattr(self.ws, "_response", None)  # the upgrade's headers (aiohttp keeps them there)
        wants = response.headers.get(AUTH_HEADER, "") if response is not None else ""
        if wants == "token" and not self.token:
            raise UserError(f"the gateway at {self.url} requires a token: pass --token or set EXOCLAW_TOKEN")
        if self.token:
            await self.ws.send_str(json.dumps({"token": self.token}))
        hello = await self._hello()
        if hello.get("error") == "auth_failed":
            raise UserError(AUTH_FAILED)
        if not hello.get("ok"):
            raise UserError(f"unexpected greeting from the gateway: {hello}")

    async def _hello(self) -> dict[str, Any]:
        import aiohttp

        msg = await self.ws.receive()
        if msg.type == aiohttp.WSMsgType.TEXT:
            try:
                return json.loads(msg.data)
            except ValueError:
                raise UserError("the gateway sent something that is not JSON") from None
        if self.ws.close_code == 4001:
            raise UserError(AUTH_FAILED)
        raise UserError("the gateway closed the connection")

    async def _pump(self) -> None:
        """Route every frame to the request waiting for its id, until the socket closes."""
        import aiohttp

        try:
            async for msg in self.ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    frame = json.loads(msg.data)
                except ValueError:
                    continue
                queue = self._waiting.get(frame.get("id")) if isinstance(frame, dict) else None
                if queue is not None:
                    queue.put_nowait(frame)
                elif isinstance(frame, dict) and frame.get("id") == "0":  # answers a frame the gateway could not read
                    for q in self._waiting.values():
                        q.put_nowait(frame)
            self.closed_because = "the gateway closed the connection"
        except (aiohttp.ClientError, OSError) as exc:
            self.closed_because = f"the connection to the gateway broke: {_reason(exc)}"
        finally:
            self.closed_because = self.closed_because or "the connection to the gateway closed"
            for q in self._waiting.values():
                q.put_nowait(_CLOSED)

    def new_id(self) -> str:
        return str(next(self._ids))

    async def _send(self, rid: str, method: str, params: dict[str, Any] | None) -> asyncio.Queue[Any]:
        if self.closed_because:
            raise UserError(self.closed_because)
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self._waiting[rid] = queue
        await self.ws.send_str(json.dumps({"id": rid, "method": method, "params": params or {}}))
        return queue

    async def _next(self, queue: asyncio.Queue[Any]) -> dict[str, Any]:
        frame = await queue.get()
        if frame is _CLOSED:
            raise UserError(self.closed_because or "the gateway closed the connection")
        return frame

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        rid = self.new_id()
        queue = await self._send(rid, method, params)
        try:
            frame = await self._next(queue)
        finally:
            self._waiting.pop(rid, None)
        if frame.get("error"):
            raise UserError(frame["error"])
        return frame.get("result")

    async def cancel(self, rid: str) -> bool:
        """Ask the gateway to cancel our turn ``rid`` (``chat.cancel``); True if it did."""
        result = await self.call("chat.cancel", {"id": rid})
        return bool(isinstance(result, dict) and result.get("cancelled"))

    async def chat(self, params: dict[str, Any], rid: str | None = None, out: TextIO | None = None,
                   err: TextIO | None = None) -> "TurnResult":
        """Send one turn and print it as it streams (text to ``out``, the rest to ``err``)."""
        out, err = out or sys.stdout, err or sys.stderr
        rid = rid or self.new_id()
        queue = await self._send(rid, "chat.send", params)
        result = TurnResult()
        try:
            while True:
                frame = await self._next(queue)
                if "event" not in frame:  # a plain error response (invalid params, no agent)
                    result.error = str(frame.get("error"))
                    print(f"error: {result.error}", file=err, flush=True)
                    return result
                event, data = frame["event"], frame.get("data")
                if event == "done":
                    return result
                print_event(event, data, out, err, result)
        finally:
            self._waiting.pop(rid, None)


class TurnResult:
    """How a streamed turn ended."""

    def __init__(self) -> None:
        self.error: str | None = None
        self.text_seen = False

    @property
    def ok(self) -> bool:
        return self.error is None


def format_cost(data: dict[str, Any]) -> str:
    """``$0.001234``, or ``unpriced`` when the model has no price (its cost is not known, not zero)."""
    if data.get("unpriced"):
        return "unpriced"
    return f"${float(data.get('cost_usd') or 0):.6f}"


def print_event(event: str, data: Any, out: TextIO, err: TextIO, result: TurnResult) -> None:
    if event == "text":
        out.write(data)
        out.flush()
        result.text_seen = True
    elif event == "tool_use":
        print(f"\n[tool {data['name']} {json.dumps(data['input'], ensure_ascii=False)}]", file=err, flush=True)
    elif event == "tool_result":
        mark = "error" if data.get("is_error") else "result"
        content = data.get("content", "")
        short = content if len(content) <= 200 else content[:200] + "…"
        print(f"[{mark}: {short}]", file=err, flush=True)
    elif event == "usage":
        out.write("\n")
        out.flush()
        print(f"[{data['input_tokens']} in / {data['output_tokens']} out, {format_cost(data)}]", file=err, flush=True)
    elif event == "budget.warning" and isinstance(data, dict):
        usd = data.get("unit") == "usd"
        used, limit = data.get("used", 0), data.get("limit", 0)
        figures = f"${used:,.2f} of ${limit:,.2f}" if usd else f"{used:,} of {limit:,} tokens"
        print(f"\n[budget {data.get('scope')}: {data.get('share', 0):.0%} used ({figures})]", file=err, flush=True)
    elif event == "error":
        result.error = str(data)
        if result.text_seen:
            out.write("\n")
            out.flush()
        print(f"error: {data}", file=err, flush=True)
