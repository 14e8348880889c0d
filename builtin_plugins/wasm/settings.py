"""The wasm plugin's own table: ``[[plugins]]``, one entry per WASM module (SPEC §3, §6)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from marshmallow import ValidationError

from exoclaw_hooks import ConfigContext, ConfigError
from exoclaw_hooks.config import Int, Section, Str, StrList, Table, TableArray, env_name, is_host, sha256

from .capabilities import RESERVED_NAMESPACES, reserved_message

_STORE_NAME = re.compile(r"[A-Za-z0-9_.-]+\Z")


@dataclass(frozen=True, slots=True)
class WasmPluginConfig:
    name: str
    path: str
    capabilities: tuple[str, ...] = ()
    secrets: Mapping[str, str] = field(default_factory=dict)  # name -> env var name
    config: Mapping[str, str] = field(default_factory=dict)
    timeout_ms: int = 1000
    memory_max_pages: int = 256
    max_output_bytes: int = 1024 * 1024
    sha256: str | None = None
    #: calls of this plugin running at once (all sessions together); more wait their turn
    max_concurrency: int = 4
    #: calls of this plugin running at once for one session
    max_concurrency_per_session: int = 2


def capability(value: str) -> None:
    kind, sep, arg = value.partition(":")
    if sep and kind == "http":
        bare = arg[1:-1] if arg.startswith("[") and arg.endswith("]") else arg
        if arg == "*" or is_host(bare):
            return
    if sep and kind == "store" and _STORE_NAME.match(arg):
        if arg in RESERVED_NAMESPACES:
            raise ValidationError(reserved_message(arg))
        return
    raise ValidationError("must be http:HOST, http:* or store:NAME (NAME: letters, digits, _ . -)")


class PluginSchema(Section):
    """One ``[[plugins]]`` entry (a WASM plugin)."""

    name = Str(required=True, metadata={"doc": "The plugin's name (required, unique).", "example": "echo"})
    path = Str(required=True, metadata={
        "doc": "The .wasm file (required); relative to this file's directory.", "example": "wasm_plugins/build/echo.wasm"})
    capabilities = StrList(validate_item=capability, metadata={
        "doc": 'What it may use: "http:HOST", "http:*", "store:NAME". Nothing else is reachable.', "example": []})
    secrets = Table(Str(validate=env_name), metadata={
        "doc": "name -> environment variable; the host fills {{secret:NAME}}, the plugin never sees a value."})
    config = Table(Str(allow_empty=True), metadata={"doc": "Free-form settings the plugin reads with config_get."})
    timeout_ms = Int(minimum=1, metadata={"doc": "Milliseconds one call may run (an endless loop is stopped; default 1000).", "example": 1000})
    memory_max_pages = Int(minimum=1, maximum=65536, metadata={"doc": "Memory cap, in 64 KiB pages (default 256).", "example": 256})
    max_output_bytes = Int(minimum=1, metadata={"doc": "Largest output of one call, in bytes (default 1048576)."})
    max_concurrency = Int(minimum=1, metadata={
        "doc": "Calls of this plugin running at once, all sessions together; more wait their turn.", "example": 4})
    max_concurrency_per_session = Int(minimum=1, metadata={
        "doc": "Calls of this plugin running at once for one session (one session's hostile tool cannot "
               "delay the others).", "example": 2})
    sha256 = Str(validate=sha256, metadata={"doc": "Pin the module: refuse it unless its SHA-256 is this."})


PLUGINS = TableArray(PluginSchema, label_key="name", metadata={
    "example": [
        {"name": "echo", "path": "../wasm_plugins/build/echo.wasm", "capabilities": [], "timeout_ms": 1000},
        {"name": "kv", "path": "../wasm_plugins/build/kv.wasm", "capabilities": ["store:kv"]},
        {"name": "fetch", "path": "../wasm_plugins/build/fetch.wasm", "capabilities": ["http:example.com"],
         "timeout_ms": 5000},
        {"name": "mock", "path": "../wasm_plugins/build/mock.wasm", "capabilities": ["http:127.0.0.1"],
         "config": {"reply_url": "http://127.0.0.1:9000/reply"}},
        {"name": "telegram", "path": "../wasm_plugins/build/telegram.wasm", "capabilities": ["http:api.telegram.org"],
         "secrets": {"bot_token": "TELEGRAM_BOT_TOKEN", "webhook_secret": "TELEGRAM_WEBHOOK_SECRET"},
         "config": {"api_base": "https://api.telegram.org"}},
    ],
})


def build_plugins(entries: list[Mapping[str, Any]], context: ConfigContext) -> tuple[WasmPluginConfig, ...]:
    problems: list[str] = []
    seen: dict[str, int] = {}
    out = []
    for index, data in enumerate(entries):
        if data is None:  # refused by its schema (config check goes on with the others)
            continue
        name = data["name"]
        if name in seen:
            problems.append(f'[[plugins]] #{index + 1} (name "{name}") name: must be unique, '
                            f'[[plugins]] #{seen[name] + 1} has the same name (got "{name}")')
        seen.setdefault(name, index)
        kw = {k: data[k] for k in ("timeout_ms", "memory_max_pages", "max_output_bytes", "max_concurrency",
                                   "max_concurrency_per_session") if k in data}
        if "sha256" in data:
            kw["sha256"] = data["sha256"].lower()
        out.append(WasmPluginConfig(
            name=name, path=context.resolve_path(data["path"]),
            capabilities=tuple(data.get("capabilities", ())), secrets=dict(data.get("secrets", {})),
            config=dict(data.get("config", {})), **kw,
        ))
    if problems:
        raise ConfigError(problems)
    return tuple(out)
