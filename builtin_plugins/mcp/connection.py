"""One MCP server as the gateway sees it: connected or not, its tools, its calls.

A :class:`ServerConnection` owns one SDK ``Client`` inside a supervisor task
(anyio wants a client entered and left by the same task). The supervisor
connects, lists the tools, then keeps the list fresh — on the server's
list-changed notice, every ``refresh_s``, and when a call finds the
connection gone — and reconnects with backoff (1 s doubling to 60 s) when
it fails. Meanwhile ``state`` says ``connecting``, ``up``, ``down`` (with the
reason, retrying) or ``refused`` (nothing to retry: a secret is not set, the
command is not there).

Calls do not go through the supervisor: each turn's call is its own request
on the client (JSON-RPC ids, one HTTP request each), awaited by the caller
with its own deadline, so a hung call holds nothing another call needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Callable

import mcp_types as types
from mcp import Client, MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from exoclaw_hooks import log_value

from .settings import ServerConfig
from .transport import open_transport

log = logging.getLogger("exoclaw.mcp")

RETRY_FIRST_S = 1.0
RETRY_MAX_S = 60.0
MAX_PAGES = 100
#: how long the gateway's start waits for a server's first attempt
STARTUP_WAIT_S = 10.0
#: a listen stream that ended after living this long is opened again
LISTEN_RETRY_S = 30.0


class CallFailed(Exception):
    """A call that produced no result; ``str()`` is for the model (no secrets, no server text)."""

    def __init__(self, message: str, server_text: str = ""):
        super().__init__(message)
        #: text that came from the server (untrusted: the caller wraps it as tool output)
        self.server_text = server_text


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an error's text (pydantic and the SDK write whole paragraphs)."""
    text = str(getattr(exc, "message", None) or exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:limit]


def one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, BaseExceptionGroup):  # anyio task groups wrap the real error
        leaf = exc
        while isinstance(leaf, BaseExceptionGroup) and leaf.exceptions:
            leaf = leaf.exceptions[0]
        text = one_line(leaf, limit)
    return text[:limit]


class ServerConnection:
    def __init__(self, cfg: ServerConfig, on_change: Callable[["ServerConnection"], None], *,
                 client_info: types.Implementation | None = None):
        self.cfg = cfg
        self.on_change = on_change
        self.client_info = client_info
        self.state = "stopped"
        self.reason = ""
        self.protocol: str | None = None
        #: the valid tools the server lists, by their MCP name
        self.listed: dict[str, types.Tool] = {}
        #: the malformed entries of the last listing: name -> why
        self.skipped: dict[str, str] = {}
        self.connected_at: float | None = None
        self.retry_at: float | None = None
        self._client: Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._settled = asyncio.Event()
        self._stopping = False
        self._bad: dict[str, str] = {}
        self._abandoned: set[asyncio.Future[Any]] = set()

    # ------------------------------------------------------------ lifecycle

    async def start(self, wait: bool = True) -> None:
        """Start the supervisor; with ``wait``, return once the first attempt is over (bounded by its timeouts)."""
        missing = self.cfg.missing_secrets()
        if missing:
            return self.refuse(f"environment variable {missing[0]} is not set")
        if self.cfg.command and self.cfg.executable is None:
            return self.refuse(f"command not found: {self.cfg.command}")
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"exoclaw-mcp-{self.cfg.name}")
        if wait:  # the gateway opens its port after this: a slow server goes on connecting in the background
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(self.cfg.connect_timeout_ms / 1000 + 1.0, STARTUP_WAIT_S)):
                    await self._settled.wait()

    async def stop(self) -> None:
        self._stopping = True
        self.state = "stopped"  # before the supervisor's last on_change: a stopped server offers nothing
        self._wake.set()
        task, self._task = self._task, None
        for pending in list(self._abandoned):
            pending.cancel()
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._abandoned:
            await asyncio.gather(*self._abandoned, return_exceptions=True)
        self._client = None
        self.state, self.listed = "stopped", {}

    def refuse(self, reason: str) -> None:
        self.state, self.reason = "refused", reason
        log.error("event=mcp_server_refused server=%s reason=%s", self.cfg.name, log_value(reason))
        self._settled.set()
        self.on_change(self)

    async def _run(self) -> None:
        delay = RETRY_FIRST_S
        while not self._stopping:
            self.state, self.retry_at = "connecting", None
            try:
                await self._session()
                delay = RETRY_FIRST_S  # it was up: the next failure retries quickly
            except asyncio.CancelledError:
                raise
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - anything a server does ends in a retry
                if self._stopping:
                    break
                was_up = self.state == "up"
                self.state, self.reason = "down", one_line(exc)
                self.listed, self.connected_at = {}, None
                if was_up:
                    delay = RETRY_FIRST_S
                log.warning("event=mcp_server_down server=%s reason=%s retry_s=%.0f",
                            self.cfg.name, log_value(self.reason), delay)
            finally:
                self._client = None
                self._settled.set()
                self.on_change(self)
            if self._stopping:
                break
            self.retry_at = time.time() + delay
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            delay = min(delay * 2, RETRY_MAX_S)

    async def _session(self) -> None:
        cfg = self.cfg
        connect_s = cfg.connect_timeout_ms / 1000
        client = Client(
            open_transport(cfg, self._bad_tool), mode="auto", cache=None, read_timeout_seconds=connect_s,
            message_handler=self._message, client_info=self.client_info,
        )
        async with contextlib.AsyncExitStack() as stack:
            async with asyncio.timeout(connect_s):
                await stack.enter_async_context(client)
                await self._refresh(client)
            self._client, self.protocol = client, client.protocol_version
            self.state, self.reason, self.connected_at = "up", "", time.time()
            log.info("event=mcp_server_up server=%s transport=%s protocol=%s tools=%d",
                     cfg.name, cfg.kind, self.protocol, len(self.listed))
            self._settled.set()
            self.on_change(self)
            await self._watch(client)

    async def _watch(self, client: Client) -> None:
        modern = client.protocol_version in MODERN_PROTOCOL_VERSIONS
        listener: asyncio.Task[None] | None = None
        started = 0.0
        try:
            while not self._stopping:
                # a listen stream that lived a while and ended (the server closed it) is opened again;
                # one that fails at once is not (the server does not offer it: the refreshes remain)
                if modern and (listener is None or (listener.done() and time.monotonic() - started > LISTEN_RETRY_S)):
                    listener, started = asyncio.get_running_loop().create_task(self._listen(client)), time.monotonic()
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.cfg.refresh_s or None):
                        await self._wake.wait()
                if self._stopping:
                    return
                async with asyncio.timeout(self.cfg.connect_timeout_ms / 1000):
                    await self._refresh(client)
                self.on_change(self)
        finally:
            if listener is not None:
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)

    async def _listen(self, client: Client) -> None:
        """2026-07-28 servers announce list changes on a ``subscriptions/listen`` stream."""
        try:
            async with client.listen(tools_list_changed=True) as subscription:
                async for _event in subscription:
                    self._wake.set()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a lost stream may be a lost server: check now
            log.debug("event=mcp_listen_ended server=%s reason=%s", self.cfg.name, log_value(one_line(exc)))
            self._wake.set()

    async def _message(self, message: Any) -> None:
        """Handshake-era servers send ``notifications/tools/list_changed`` on the session."""
        if isinstance(message, types.ToolListChangedNotification):
            self._wake.set()

    async def _refresh(self, client: Client) -> None:
        self._bad = {}
        tools: list[types.Tool] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            page = await client.list_tools(cursor=cursor)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        if self._bad != self.skipped:
            for name, why in self._bad.items():
                if self.skipped.get(name) != why:
                    log.warning("event=mcp_tool_skipped server=%s tool=%s reason=%s", self.cfg.name, log_value(name), log_value(why))
        self.skipped = dict(self._bad)
        self.listed = {t.name: t for t in tools}

    def _bad_tool(self, name: str, reason: str) -> None:
        self._bad[name] = reason

    # ------------------------------------------------------------ calls

    async def call(self, tool: str, arguments: dict[str, Any]) -> Any:
        """The server's ``CallToolResult`` for one call, within ``timeout_ms``; :class:`CallFailed` otherwise."""
        client = self._client
        if client is None or self.state != "up":
            raise CallFailed(f"MCP server {self.cfg.name} is not connected")
        timeout_s = self.cfg.timeout_ms / 1000
        pending = asyncio.ensure_future(client.call_tool(tool, arguments, read_timeout_seconds=timeout_s))
        try:
            done, _ = await asyncio.wait((pending,), timeout=timeout_s)
        except asyncio.CancelledError:
            self._abandon(pending)
            raise
        if not done:
            self._abandon(pending)  # its clean-up (a courtesy cancel to the server) must not delay the answer
            raise CallFailed(f"timed out after {self.cfg.timeout_ms} ms")
        try:
            return pending.result()
        except MCPError as exc:
            raise self._failure(exc) from None
        except Exception as exc:  # noqa: BLE001 - a bad answer is the model's error result, never ours
            raise CallFailed(f"the server's answer is not a valid MCP result ({type(exc).__name__})",
                             server_text=first_line(exc)) from None

    def _failure(self, exc: MCPError) -> CallFailed:
        if exc.code == types.CONNECTION_CLOSED:
            self._wake.set()  # the supervisor checks the connection
            return CallFailed(f"the connection to MCP server {self.cfg.name} was lost")
        if exc.code == types.REQUEST_TIMEOUT:
            return CallFailed(f"timed out after {self.cfg.timeout_ms} ms")
        if "max_response_bytes" in exc.message:  # our transport's cap (see transport.AnswerTooLarge)
            return CallFailed(f"the answer is larger than {self.cfg.max_response_bytes} bytes (max_response_bytes)")
        if exc.code == types.PARSE_ERROR:
            return CallFailed("the server's answer is not valid JSON-RPC", server_text=first_line(exc))
        return CallFailed(f"the server answered with error {exc.code}", server_text=first_line(exc))

    def _abandon(self, pending: asyncio.Future[Any]) -> None:
        pending.cancel()
        self._abandoned.add(pending)
        pending.add_done_callback(self._abandoned.discard)
        pending.add_done_callback(_consume)


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved: no "exception was never retrieved" noise


