"""The builtin ``mcp`` plugin: tools of MCP servers, under the grants, limits and meters of every tool.

A hook plugin like any third party's (entry point ``mcp``), built on the
official ``mcp`` SDK (the client) and nothing of the core's.

* ``register_settings``: ``[mcp_stdio]`` and ``[[mcp]]`` (see :mod:`.settings`).
* ``gateway_startup`` (last, so the WASM tools are known): every server is
  connected at once, each within its ``connect_timeout_ms``; one that is down
  is reported and retried in the background, its tools absent meanwhile.
* ``list_tools`` / ``dispatch_tool``: the granted tools the server lists,
  offered as ``server__tool`` (the names model APIs accept) and dispatched by
  that name or by ``server.tool``; an agent with a ``tools`` list gets those
  it names (``server.tool`` or ``server.*``). A tool whose name clashes with
  another plugin's is refused, the error naming both.
* ``plugin_report`` / ``status_info``: each server, its state, and its
  tools granted, offered, not granted and skipped (``exoclaw mcp list``,
  ``exoclaw plugins``, ``status``, the ``serve`` summary).

A call is metered by the core like every ``dispatch_tool`` (counted and timed
under the name the model used); its output is capped and enveloped as data,
and any failure — an error, a timeout, a lost connection, an answer that is
not MCP — is an error tool result.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from exoclaw_hooks import AgentConfig, SettingsTable, ToolCall, ToolResult, ToolSpec, hookimpl, log_value

from .settings import SERVERS, Builder, ServerConfig, StdioPolicy, StdioSchema
from .tools import envelope, render_result, scrub, tool_spec

if TYPE_CHECKING:
    from .connection import ServerConnection

log = logging.getLogger("exoclaw.mcp")

GROUP = "mcp servers"


@dataclass(frozen=True, slots=True)
class Offer:
    server: str
    tool: str
    spec: ToolSpec

    @property
    def qualified(self) -> str:
        return f"{self.server}.{self.tool}"


class McpPlugin:
    """Connects the configured MCP servers and answers the tool hooks for their granted tools."""

    def __init__(self) -> None:
        self._builder = Builder()
        self.servers: tuple[ServerConfig, ...] = ()
        self.stdio = StdioPolicy()
        self.conns: dict[str, ServerConnection] = {}
        #: wire name and server.tool -> the offer
        self._offers: dict[str, Offer] = {}
        #: per server: its offers, and its granted tools refused for a clash (server.tool -> why)
        self._by_server: dict[str, list[Offer]] = {}
        self._clashes: dict[str, dict[str, str]] = {}
        #: tool names other plugins offer (WASM tools), learned at start-up
        self._foreign: set[str] = set()

    # ------------------------------------------------------------ configuration

    @hookimpl
    def register_settings(self, register: Callable[[SettingsTable], None]) -> None:
        # [mcp_stdio] first: [[mcp]]'s build checks its commands against it
        register(SettingsTable(
            "mcp_stdio", StdioSchema, apply=self._set_stdio, build=self._builder.build_stdio,
            doc="Local (stdio) MCP servers run unsandboxed with the gateway's rights: off unless allowed here.",
        ))
        register(SettingsTable(
            "mcp", SERVERS, apply=self._set_servers, build=self._builder.build_servers,
            doc="MCP servers whose granted tools agents may use, named SERVER.TOOL in their tools list.",
        ))

    def _set_stdio(self, policy: StdioPolicy) -> None:
        self.stdio = policy

    def _set_servers(self, servers: tuple[ServerConfig, ...]) -> None:
        self.servers = servers

    # ------------------------------------------------------------ lifecycle

    @hookimpl(trylast=True)
    async def gateway_startup(self, host: Any) -> None:
        for cfg in self.servers:  # header values and granted variables: never in a log line
            for value in cfg.secret_values.values():
                host.register_secret(value)
        self._offers, self._by_server, self._clashes = {}, {}, {}
        if not self.servers:
            return
        # the MCP SDK (and what it pulls in: ~50 MB of a gateway's memory) is loaded only when a server is configured
        import mcp_types as types

        from .connection import ServerConnection

        quiet_sdk_logs()
        self._foreign = await self._other_tools(host)
        info = types.Implementation(name="exoclaw", version=_version())
        self.conns = {cfg.name: ServerConnection(cfg, self._changed, client_info=info) for cfg in self.servers}
        for cfg in self.servers:
            conn = self.conns[cfg.name]
            if cfg.command and not self.stdio.permits(cfg.command):  # config already refuses it: defence in depth
                conn.refuse("local MCP servers need [mcp_stdio] allow = true and the command listed")
        await asyncio.gather(*(c.start() for c in self.conns.values() if c.state != "refused"))

    @hookimpl
    async def gateway_shutdown(self, host: Any) -> None:
        conns, self.conns = self.conns, {}
        await asyncio.gather(*(c.stop() for c in conns.values()), return_exceptions=True)
        self._offers, self._by_server = {}, {}

    async def _other_tools(self, host: Any) -> set[str]:
        everyone = AgentConfig(id="*", provider="*", model="*")
        names: set[str] = set()
        for specs in await host.hooks.all("list_tools", agent=everyone):
            names.update(s.name for s in specs or () if isinstance(s, ToolSpec))
        return names

    def _changed(self, conn: ServerConnection) -> None:
        """The server's tools (or state) changed: recompute what it offers."""
        name = conn.cfg.name
        for offer in self._by_server.pop(name, []):
            for key in (offer.spec.name, offer.qualified):
                if self._offers.get(key) is offer:
                    del self._offers[key]
        clashes: dict[str, str] = {}
        offers: list[Offer] = []
        if conn.state == "up":
            for tool_name, tool in conn.listed.items():
                if not conn.cfg.grants(tool_name):
                    continue
                description = scrub(tool.description or "", conn.cfg.secrets)
                offer = Offer(name, tool_name, tool_spec(name, tool_name, description, tool.input_schema))
                why = self._clash(offer)
                if why:
                    clashes[offer.qualified] = why
                    if self._clashes.get(name, {}).get(offer.qualified) != why:
                        log.error("event=mcp_tool_refused server=%s tool=%s reason=%s", name, log_value(tool_name), log_value(why))
                    continue
                offers.append(offer)
                self._offers[offer.spec.name] = self._offers[offer.qualified] = offer
        self._by_server[name], self._clashes[name] = offers, clashes

    def _clash(self, offer: Offer) -> str:
        for key in (offer.spec.name, offer.qualified):
            if key in self._foreign:
                return f"MCP tool {offer.qualified} clashes with the tool {key} that another plugin offers"
            other = self._offers.get(key)
            if other is not None:
                return (f"MCP tool {offer.qualified} and MCP tool {other.qualified} would both be offered "
                        f"as {offer.spec.name}")
        return ""

    # ------------------------------------------------------------ tools

    @hookimpl
    def list_tools(self, agent: Any) -> list[ToolSpec]:
        allowed = getattr(agent, "tools", None)
        return [o.spec for offers in self._by_server.values() for o in offers if _permits(allowed, o)]

    @hookimpl
    def dispatch_tool(self, call: ToolCall, context: Any) -> Any:
        offer = self._offers.get(call.name)
        if offer is None:
            return None
        if not _permits(getattr(getattr(context, "agent", None), "tools", None), offer):
            return None  # the core answers "unknown tool: NAME"
        conn = self.conns.get(offer.server)
        if conn is None:
            return None
        return self._run(conn, offer, call)

    async def _run(self, conn: ServerConnection, offer: Offer, call: ToolCall) -> ToolResult:
        from .connection import CallFailed

        secrets = conn.cfg.secrets
        try:
            result = await conn.call(offer.tool, dict(call.input))
        except CallFailed as exc:
            text = f"MCP tool {offer.qualified} failed: {exc}"
            if exc.server_text:
                text += "\n" + envelope(offer.server, offer.tool, scrub(exc.server_text[:2000], secrets))
            return ToolResult(call.id, text, True)
        content, is_error = render_result(offer.server, offer.tool, result, conn.cfg.max_output_bytes)
        return ToolResult(call.id, scrub(content, secrets) if secrets else content, is_error)

    # ------------------------------------------------------------ reports

    @hookimpl
    def plugin_report(self, host: Any) -> list[dict[str, Any]]:
        return [self._entry(cfg) for cfg in self.servers]

    @hookimpl
    def status_info(self, host: Any) -> dict[str, Any]:
        if not self.servers:
            return {}
        keys = ("name", "transport", "state", "reason", "tools", "unsandboxed")
        return {"mcp_servers": [{k: e[k] for k in keys} for e in self.plugin_report(host)]}

    def _entry(self, cfg: ServerConfig) -> dict[str, Any]:
        conn = self.conns.get(cfg.name)
        state = conn.state if conn else "stopped"
        listed = sorted(conn.listed) if conn else []
        offered = [o.qualified for o in self._by_server.get(cfg.name, [])]
        granted = "*" if cfg.tools == "*" else list(cfg.tools)
        entry: dict[str, Any] = {
            "name": cfg.name, "kind": "mcp", "group": GROUP, "transport": cfg.kind, "state": state,
            "loaded": state == "up", "reason": conn.reason if conn else "", "path": cfg.where(),
            "tools": offered, "capabilities": [], "granted": granted, "available": listed,
            "not_granted": [t for t in listed if not cfg.grants(t)],
            "missing": [] if granted == "*" or state != "up" else [t for t in granted if t not in listed],
            "skipped": dict(conn.skipped) if conn else {},
            "refused": dict(self._clashes.get(cfg.name, {})),
            "unsandboxed": bool(cfg.command), "protocol": conn.protocol if conn else None,
            "retry_in_s": round(max(conn.retry_at - time.time(), 0), 1) if conn and conn.retry_at and state == "down"
            else None,
        }
        tools = f"{len(offered)} tool{'s' if len(offered) != 1 else ''}"
        detail = f"{state}, {tools}" if state == "up" else f"{state}: {entry['reason']}" if entry["reason"] else state
        entry["summary"] = f"{cfg.name} ({cfg.kind}, {detail})"
        if cfg.command:
            entry["warning"] = (f"MCP server {cfg.name} runs a local command UNSANDBOXED with the gateway's rights: "
                                f"{cfg.where()}")
        return entry


def quiet_sdk_logs() -> None:
    """The SDK logs every HTTP request (``httpx2``, info) and bad answers as multi-line tracebacks (``mcp``).

    The plugin logs those events itself, one line each (``event=tool_call``,
    ``event=mcp_server_down`` …); ``EXOCLAW_LOG=debug`` leaves the SDK's own
    lines on.
    """
    if logging.getLogger().isEnabledFor(logging.DEBUG):
        return
    for name, level in (("httpx2", logging.WARNING), ("httpcore2", logging.WARNING), ("mcp", logging.CRITICAL)):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(level)


def _permits(allowed: Any, offer: Offer) -> bool:
    if allowed is None:
        return True
    return offer.qualified in allowed or f"{offer.server}.*" in allowed or offer.spec.name in allowed


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("exoclaw-runtime")
    except PackageNotFoundError:  # pragma: no cover - a source checkout
        return "0"
