"""The mcp plugin's tables: ``[[mcp]]`` (one entry per MCP server) and ``[mcp_stdio]`` (SPEC §3).

A remote server is reached over Streamable HTTP (or SSE for older servers)::

    [[mcp]]
    name = "gh"
    url = "https://api.githubcopilot.com/mcp/"
    tools = ["search_issues", "get_issue"]      # a list, or "*"; default: none
    bearer = "GITHUB_MCP_TOKEN"                 # Authorization: Bearer <$GITHUB_MCP_TOKEN>
    headers = { X-Team = "GH_TEAM" }            # header -> environment variable

A local server is a command run over stdio. It is code running unsandboxed
with the gateway's rights, so it is off unless the owner says so twice: TOML
cannot have both ``[mcp]`` and ``[[mcp]]``, so the switch is its own table::

    [mcp_stdio]
    allow = true
    commands = ["/usr/bin/npx"]                 # each command, exactly as [[mcp]] command writes it

    [[mcp]]
    name = "fs"
    command = "/usr/bin/npx"
    args = ["-y", "@modelcontextprotocol/server-filesystem", "/srv/notes"]
    env = { PATH = "PATH" }                     # the child's only variables: NAME -> host variable
    tools = ["read_file"]

Secrets (header values, granted variables) are named by environment
variable and read from the environment the gateway runs with; their values
never appear in the config, in messages, logs or the model's context.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from marshmallow import ValidationError, fields

from exoclaw_hooks import ConfigContext, ConfigError
from exoclaw_hooks.config import REQUIRED, Bool, Int, Section, Str, StrList, Table, TableArray, env_name, is_loopback

_SERVER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}\Z")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
#: headers the MCP transport sets itself
_RESERVED_HEADERS = frozenset({
    "accept", "content-type", "content-length", "host", "connection", "transfer-encoding",
    "mcp-session-id", "mcp-protocol-version", "last-event-id",
})
#: query parameters that carry credentials: a URL with one is refused
_SECRET_PARAMS = frozenset({
    "token", "access_token", "accesstoken", "api_key", "apikey", "key", "secret", "client_secret",
    "password", "passwd", "pwd", "auth", "sig", "signature", "private_token",
})
TRANSPORTS = ("streamable-http", "sse")

DEFAULT_TIMEOUT_MS = 30_000
DEFAULT_CONNECT_TIMEOUT_MS = 5_000
#: a local server may first have to be fetched (npx, uvx): it gets longer to start
DEFAULT_STDIO_CONNECT_TIMEOUT_MS = 30_000
DEFAULT_MAX_OUTPUT_BYTES = 64 * 1024
DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024
DEFAULT_REFRESH_S = 300


def server_name(value: str) -> None:
    if not _SERVER_NAME.match(value):
        raise ValidationError("must be 1 to 32 letters, digits, _ or -, starting with a letter or digit")


def header_name(value: str) -> None:
    if not _HEADER_NAME.match(value):
        raise ValidationError("must be an HTTP header name")
    if value.lower() in _RESERVED_HEADERS:
        raise ValidationError("is set by the MCP transport itself")


class Grant(fields.Field):
    """``tools``: a list of tool names, or ``"*"`` (every tool the server lists)."""

    default_error_messages = {"required": REQUIRED, "invalid": 'must be a list of tool names or "*"'}

    def _deserialize(self, value, attr, data, **kwargs):
        if value == "*":
            return "*"
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.make_error("invalid")
        return tuple(dict.fromkeys(value))


class ServerSchema(Section):
    """One ``[[mcp]]`` entry (an MCP server)."""

    name = Str(required=True, validate=server_name, metadata={
        "doc": "The server's name (required, unique); agents name its tools NAME.TOOL.", "example": "gh"})
    url = Str(metadata={
        "doc": "Its endpoint (http:// or https://), without credentials: those go in headers.",
        "example": "https://mcp.example.com/mcp"})
    transport = Str(validate=lambda v: _one_of(v, TRANSPORTS), metadata={
        "doc": 'With url: "streamable-http" (default) or "sse" (older servers).'})
    tools = Grant(metadata={
        "doc": 'The tools offered to agents: a list of the server\'s tool names, or "*". Default: none.',
        "example": ["search_issues"]})
    headers = Table(Str(validate=env_name), key_validate=header_name, metadata={
        "doc": "With url: header -> environment variable holding its value (a secret)."})
    bearer = Str(validate=env_name, metadata={
        "doc": "With url: environment variable holding a token sent as Authorization: Bearer <token>."})
    command = Str(metadata={
        "doc": "Instead of url: a local server run over stdio (needs [mcp_stdio] allow and the command listed)."})
    args = StrList(metadata={"doc": "With command: its arguments."})
    env = Table(Str(validate=env_name), key_validate=env_name, metadata={
        "doc": "With command: the child's only environment variables, NAME -> variable of the gateway's environment."})
    cwd = Str(metadata={"doc": "With command: its working directory (relative to this file's directory)."})
    timeout_ms = Int(minimum=1, maximum=3_600_000, metadata={
        "doc": "Milliseconds one tool call may take; then the model gets an error result.", "example": 30000})
    connect_timeout_ms = Int(minimum=1, maximum=600_000, metadata={
        "doc": "Milliseconds to connect and list the tools (default 5000; 30000 for a local server); "
               "a server down at start is retried in the background."})
    max_output_bytes = Int(minimum=1, metadata={"doc": "A tool result longer than this is cut (bytes of UTF-8)."})
    max_response_bytes = Int(minimum=1, metadata={
        "doc": "Largest HTTP answer read from the server; a bigger one is an error result."})
    refresh_s = Int(minimum=0, metadata={
        "doc": "Seconds between re-listings of the server's tools (0: only when it says they changed)."})


class StdioSchema(Section):
    """``[mcp_stdio]``: whether local (stdio) MCP servers may run, and which commands."""

    allow = Bool(metadata={"doc": "Run local MCP servers (unsandboxed code with the gateway's rights). Default false."})
    commands = StrList(metadata={"doc": "The commands [[mcp]] entries may run, exactly as they write them."})


SERVERS = TableArray(ServerSchema, label_key="name")


def _one_of(value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValidationError("must be one of " + ", ".join(choices))


# ---------------------------------------------------------------- built configuration


@dataclass(frozen=True, slots=True)
class StdioPolicy:
    allow: bool = False
    commands: tuple[str, ...] = ()

    def permits(self, command: str) -> bool:
        return self.allow and command in self.commands


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """One MCP server as the plugin runs it (secrets by variable name; values in ``secret_values``)."""

    name: str
    url: str | None = None
    transport: str = "streamable-http"
    tools: tuple[str, ...] | str = ()
    #: header -> environment variable
    headers: Mapping[str, str] = field(default_factory=dict)
    bearer: str | None = None
    command: str | None = None
    args: tuple[str, ...] = ()
    #: child variable -> environment variable
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    connect_timeout_ms: int = DEFAULT_CONNECT_TIMEOUT_MS
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    refresh_s: int = DEFAULT_REFRESH_S
    #: environment variable -> its value (None when unset), read when the config was built
    secret_values: Mapping[str, str | None] = field(default_factory=dict, repr=False, compare=False)
    #: the command as found on the gateway's PATH (None: not found)
    executable: str | None = None
    #: where a stdio server's stderr goes
    stderr_path: str | None = None

    @property
    def kind(self) -> str:
        return "stdio" if self.command else self.transport

    def grants(self, tool: str) -> bool:
        return self.tools == "*" or tool in self.tools

    @property
    def secrets(self) -> tuple[str, ...]:
        """The secret values this server is given, longest first (for scrubbing what it sends back)."""
        values = {v for v in self.secret_values.values() if v and len(v) >= 4}
        return tuple(sorted(values, key=len, reverse=True))

    def missing_secrets(self) -> list[str]:
        """The environment variables this server needs that are not set."""
        wanted = [*self.headers.values(), *([self.bearer] if self.bearer else []), *self.env.values()]
        return [v for v in dict.fromkeys(wanted) if not self.secret_values.get(v)]

    def http_headers(self) -> dict[str, str]:
        out = {h: self.secret_values.get(v) or "" for h, v in self.headers.items()}
        if self.bearer:
            out["Authorization"] = f"Bearer {self.secret_values.get(self.bearer) or ''}"
        return out

    def child_env(self) -> dict[str, str]:
        return {k: self.secret_values.get(v) or "" for k, v in self.env.items()}

    def where(self) -> str:
        """The endpoint, for reports: the URL without its query, or the command (not its arguments: they may
        carry what should have been a granted variable)."""
        if self.url:
            p = urlsplit(self.url)
            return urlunsplit((p.scheme, p.netloc, p.path, "", ""))
        return self.command or ""


class Builder:
    """Builds both tables; ``[mcp_stdio]`` is built first so ``[[mcp]]`` can be checked against it."""

    def __init__(self) -> None:
        self.stdio = StdioPolicy()

    def build_stdio(self, data: Mapping[str, Any], context: ConfigContext) -> StdioPolicy:
        self.stdio = StdioPolicy(bool(data.get("allow", False)), tuple(data.get("commands", ())))
        return self.stdio

    def build_servers(self, entries: list[Mapping[str, Any] | None], context: ConfigContext) -> tuple[ServerConfig, ...]:
        problems: list[str] = []
        seen: dict[str, int] = {}
        out: list[ServerConfig] = []
        for index, data in enumerate(entries):
            if data is None:  # refused by its schema (config check goes on with the others)
                continue
            label = f'[[mcp]] #{index + 1} (name "{data["name"]}")'
            before = len(problems)
            if data["name"] in seen:
                problems.append(f"{label} name: must be unique, [[mcp]] #{seen[data['name']] + 1} has the same name")
            seen.setdefault(data["name"], index)
            problems += [f"{label} {p}" for p in _entry_problems(data, self.stdio)]
            if len(problems) == before:
                out.append(_server(data, context))
        problems += _agent_problems(out, context)
        if problems:
            raise ConfigError(problems)
        return tuple(out)


def _entry_problems(data: Mapping[str, Any], stdio: StdioPolicy) -> list[str]:
    url, command = data.get("url"), data.get("command")
    if bool(url) == bool(command):
        return ["url: give either url (a remote server) or command (a local stdio server)"]
    if command:
        problems = [f"{key}: only for a remote server (url)" for key in ("transport", "headers", "bearer") if key in data]
        if not stdio.allow:
            problems.append("command: local MCP servers are off; set [mcp_stdio] allow = true to run them")
        elif command not in stdio.commands:
            problems.append(f'command: "{command}" is not listed in [mcp_stdio] commands')
        return problems
    problems = [f"{key}: only for a local server (command)" for key in ("args", "env", "cwd") if key in data]
    problems += url_problems(url)
    if "bearer" in data and any(h.lower() == "authorization" for h in data.get("headers", {})):
        problems.append("bearer: headers already sets Authorization")
    if (data.get("headers") or data.get("bearer")) and not problems:
        parts = urlsplit(url)
        if parts.scheme != "https" and not is_loopback(parts.hostname or ""):
            problems.append("url: secret headers are only sent over https:// (or to a loopback http:// server)")
    return problems


def url_problems(url: str) -> list[str]:
    """What is wrong with an MCP endpoint URL; never repeats a credential it carries."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return ["url: must be an http:// or https:// URL"]
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [f"url: must be an http:// or https:// URL (got {redact_url(url)})"]
    if parts.username is not None or parts.password is not None:
        return ["url: must not carry credentials (user:password@); put them in headers or bearer, "
                "read from environment variables"]
    secret = [k for k, _ in parse_qsl(parts.query, keep_blank_values=True) if k.lower() in _SECRET_PARAMS]
    if secret:
        return [f"url: must not carry credentials (query parameter {secret[0]}); put them in headers or bearer, "
                "read from environment variables"]
    return []


def redact_url(url: str) -> str:
    """``url`` with any userinfo and query replaced by ``***``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<not a URL>"
    netloc = ("***@" if "@" in parts.netloc else "") + host + port
    return urlunsplit((parts.scheme, netloc, parts.path, "***" if parts.query else "", ""))


def _server(data: Mapping[str, Any], context: ConfigContext) -> ServerConfig:
    kw: dict[str, Any] = {k: data[k] for k in (
        "url", "transport", "tools", "bearer", "command", "timeout_ms", "connect_timeout_ms",
        "max_output_bytes", "max_response_bytes", "refresh_s") if k in data}
    headers, env = dict(data.get("headers", {})), dict(data.get("env", {}))
    wanted = [*headers.values(), *env.values(), *([data["bearer"]] if "bearer" in data else [])]
    if data.get("command"):
        kw.setdefault("connect_timeout_ms", DEFAULT_STDIO_CONNECT_TIMEOUT_MS)
        kw["args"] = tuple(data.get("args", ()))
        kw["executable"] = _which(data["command"], context)
        kw["stderr_path"] = os.path.join(context.resolve_path(context.data_dir), f"mcp-{data['name']}.stderr.log")
        if "cwd" in data:
            kw["cwd"] = context.resolve_path(data["cwd"])
    return ServerConfig(
        name=data["name"], headers=headers, env=env,
        secret_values={v: context.env.get(v) for v in wanted}, **kw,
    )


def _which(command: str, context: ConfigContext) -> str | None:
    if os.sep in command:
        path = context.resolve_path(command)
        return path if os.path.isfile(path) and os.access(path, os.X_OK) else None
    return shutil.which(command, path=context.env.get("PATH", os.defpath))


def _agent_problems(servers: list[ServerConfig], context: ConfigContext) -> list[str]:
    """An agent naming ``server.tool`` that the server's entry does not grant is almost surely a mistake."""
    by_name = {s.name: s for s in servers}
    problems = []
    for agent in context.agents.values():
        where = "[agent]" if agent.id == context.default_agent else f"[agents.{agent.id}]"
        for item in agent.tools or ():
            server, dot, tool = item.partition(".")
            cfg = by_name.get(server)
            if not dot or cfg is None or tool == "*" or cfg.grants(tool):
                continue
            granted = "none" if not cfg.tools else ", ".join(cfg.tools)
            problems.append(f'{where} tools: "{item}" is not granted by [[mcp]] {server} (its tools: {granted})')
    return problems
