"""How the plugin reaches a server: the SDK's transports, with Exoclaw's limits around them.

* HTTP (Streamable HTTP, or SSE for older servers): one ``httpx2`` client per
  server carrying the secret headers, no connection cap (a hung call holds
  only its own connection), no proxy or ``.netrc`` from the environment, and
  every POST answer cut off at ``max_response_bytes`` (a 1 GB answer is an
  error result, not a gateway out of memory).
* stdio: the command with only the granted variables. The SDK always adds
  ``HOME``, ``PATH``, ``USER``… to a child's environment, so the child is
  started through ``env -u NAME …`` for each of those not granted.
* Both: :class:`ScreenedTransport` drops malformed entries of ``tools/list``
  answers before the SDK validates them (the SDK refuses a whole listing for
  one bad tool), reporting each to ``on_bad_tool(name, reason)``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from typing import Any, AsyncIterator, Callable

import httpx2
from mcp.client.sse import sse_client
from mcp.client.stdio import DEFAULT_INHERITED_ENV_VARS, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.message import SessionMessage
from mcp_types import JSONRPCRequest, JSONRPCResponse

from .settings import ServerConfig
from .tools import BadTool, screen_tool, tool_label

OnBadTool = Callable[[str, str], None]


class AnswerTooLarge(httpx2.StreamError):
    pass


class _CappedStream(httpx2.AsyncByteStream):
    def __init__(self, inner: Any, limit: int):
        self.inner, self.limit, self.seen = inner, limit, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.inner:
            self.seen += len(chunk)
            if self.seen > self.limit:
                raise AnswerTooLarge(f"the server's answer is larger than {self.limit} bytes (max_response_bytes)")
            yield chunk

    async def aclose(self) -> None:
        await self.inner.aclose()


class CappedTransport(httpx2.AsyncBaseTransport):
    """An HTTP transport whose POST answers stop at ``limit`` bytes (long-lived GET streams are not capped)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.inner = httpx2.AsyncHTTPTransport(limits=httpx2.Limits(max_connections=None, max_keepalive_connections=32))

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST":
            response.stream = _CappedStream(response.stream, self.limit)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def http_client(cfg: ServerConfig, **_: Any) -> httpx2.AsyncClient:
    """The server's HTTP client (also the SDK's ``httpx_client_factory`` for SSE; its arguments are ours)."""
    connect = cfg.connect_timeout_ms / 1000
    return httpx2.AsyncClient(
        headers=cfg.http_headers(),
        # no read timeout: a call is cut by its own deadline, and a stream (change notices) may idle for hours;
        # a dead server is found by the periodic re-listing
        timeout=httpx2.Timeout(connect, read=None),
        transport=CappedTransport(cfg.max_response_bytes),
        trust_env=False,
        follow_redirects=False,
    )


def stdio_parameters(cfg: ServerConfig, executable: str) -> StdioServerParameters:
    """The command under ``env -u`` so that the child's environment is exactly ``cfg.env``."""
    granted = cfg.child_env()
    env_tool = shutil.which("env") or "/usr/bin/env"
    unset = [a for name in DEFAULT_INHERITED_ENV_VARS if name not in granted for a in ("-u", name)]
    return StdioServerParameters(
        command=env_tool, args=[*unset, "--", executable, *cfg.args], env=granted, cwd=cfg.cwd,
    )


@contextlib.asynccontextmanager
async def open_transport(cfg: ServerConfig, on_bad_tool: OnBadTool) -> AsyncIterator[tuple[Any, Any]]:
    """The (read, write) streams of a connection to ``cfg``'s server, screened."""
    async with contextlib.AsyncExitStack() as stack:
        if cfg.command:
            if cfg.executable is None:
                raise FileNotFoundError(f"command not found: {cfg.command}")
            os.makedirs(os.path.dirname(cfg.stderr_path or "") or ".", exist_ok=True)
            errlog = stack.enter_context(open(cfg.stderr_path or os.devnull, "w", encoding="utf-8"))
            streams = await stack.enter_async_context(stdio_client(stdio_parameters(cfg, cfg.executable), errlog=errlog))
        elif cfg.transport == "sse":
            streams = await stack.enter_async_context(sse_client(
                cfg.url or "", timeout=cfg.connect_timeout_ms / 1000, httpx_client_factory=lambda **kw: http_client(cfg),
            ))
        else:
            client = await stack.enter_async_context(http_client(cfg))
            streams = await stack.enter_async_context(streamable_http_client(
                cfg.url or "", http_client=client, max_sse_event_size=cfg.max_response_bytes,
            ))
        read, write = streams
        screen = _Screen(on_bad_tool)
        yield _ScreenedRead(read, screen), _ScreenedWrite(write, screen)


# ---------------------------------------------------------------- screening tools/list answers


class _Screen:
    def __init__(self, on_bad_tool: OnBadTool):
        self.on_bad_tool = on_bad_tool
        self.listing_ids: set[str] = set()

    def outgoing(self, item: Any) -> None:
        message = getattr(item, "message", None)
        if isinstance(message, JSONRPCRequest) and message.method == "tools/list":
            self.listing_ids.add(str(message.id))

    def incoming(self, item: Any) -> Any:
        message = getattr(item, "message", None) if isinstance(item, SessionMessage) else None
        if not isinstance(message, JSONRPCResponse) or not self.listing_ids:
            return item
        key = str(message.id)
        if key not in self.listing_ids:
            return item
        self.listing_ids.discard(key)
        tools = message.result.get("tools") if isinstance(message.result, dict) else None
        if not isinstance(tools, list):
            return item
        kept = []
        for raw in tools:
            try:
                screen_tool(raw)
            except BadTool as exc:
                self.on_bad_tool(tool_label(raw), str(exc))
                continue
            kept.append(raw)
        if len(kept) != len(tools):
            message.result["tools"] = kept
        return item


class _ScreenedRead:
    """The transport's read stream; ``tools/list`` answers are screened on the way in."""

    def __init__(self, inner: Any, screen: _Screen):
        self._inner, self._screen = inner, screen

    def __getattr__(self, name: str) -> Any:  # last_context and whatever else the SDK reads
        return getattr(self._inner, name)

    async def receive(self) -> Any:
        return self._screen.incoming(await self._inner.receive())

    def __aiter__(self) -> "_ScreenedRead":
        return self

    async def __anext__(self) -> Any:
        return self._screen.incoming(await self._inner.__anext__())

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> "_ScreenedRead":
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._inner.__aexit__(*exc)


class _ScreenedWrite:
    def __init__(self, inner: Any, screen: _Screen):
        self._inner, self._screen = inner, screen

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def send(self, item: Any) -> None:
        self._screen.outgoing(item)
        await self._inner.send(item)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> "_ScreenedWrite":
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._inner.__aexit__(*exc)
