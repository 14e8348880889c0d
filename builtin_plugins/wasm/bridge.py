"""Loading a WASM plugin and calling it: the blocking half of the ``wasm`` plugin.

Load (once, at start-up, in a worker thread): read the file, check the
optional ``sha256`` pin, compile it once (``CompiledPlugin``, with the
manifest limits and the host functions its grants link), make ONE trial
instance, check the exports its kind needs and ask it to ``describe``
itself. Any failure raises :class:`LoadError` with one sentence saying why.

Call (per tool call or webhook, in a worker thread): a fresh instance from
the compiled module (module globals never survive a call), run the export
under ``timeout_ms`` / ``memory_max_pages``, cap the output at
``max_output_bytes``. Failures raise :class:`CallFailure` whose ``kind``
says what went wrong; :func:`run_tool` turns it into an error
``ToolResult``.

Everything here blocks: never call it on the event loop.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import extism
from extism.extism import CompiledPlugin

from exoclaw_hooks import ToolCall, ToolResult, ToolSpec

from .settings import WasmPluginConfig

from .capabilities import Grants, parse_grants
from .extlog import EXTISM_LOG
from .hostfns import KvContext, kv_functions

log = logging.getLogger("exoclaw.wasm")

KINDS = ("tool", "channel")
#: exports each kind needs besides ``describe``
REQUIRED_EXPORTS = {"tool": ("handle_tool_call",), "channel": ("parse_incoming", "format_outgoing")}
#: what providers accept as a tool name (Anthropic's rule, the strictest)
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_ERROR_TEXT = 1000
_BACKTRACE = "wasm backtrace"
HTTP_IMPORT = ("extism:host/env", "http_request")


class LoadError(Exception):
    """A plugin cannot be loaded; ``str()`` is the one-line reason."""


class PluginMissing(LoadError):
    """The plugin's file does not exist (a warning, not an error)."""


class CallFailure(Exception):
    """A call failed. ``kind``: timeout, oom, trap, http, error, too_large, bad_output."""

    def __init__(self, kind: str, detail: str = "", size: int = 0):
        self.kind, self.detail, self.size = kind, detail, size
        super().__init__(f"{kind}: {detail}" if detail else kind)


@dataclass
class LoadedPlugin:
    """A compiled, described plugin, ready for calls."""

    config: WasmPluginConfig
    kind: str
    description: str
    tools: list[ToolSpec]
    asked: list[str]
    grants: Grants
    compiled: Any
    functions: list[Any]
    compile_ms: float
    store: Any = None
    #: channels: (header, secret name) from describe's ``verify``
    verify: tuple[str, str] | None = None
    #: channels: secret name -> value, read from the environment at load (never logged)
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    #: one sentence per problem found while loading that did not reject the plugin
    warnings: list[str] = field(default_factory=list)
    #: the module imports Extism's ``http_request`` (a host-side failure is then an HTTP one)
    makes_http: bool = False

    @property
    def name(self) -> str:
        return self.config.name


# ---------------------------------------------------------------- loading


def one_line(text: object, limit: int = 300) -> str:
    out = " ".join(str(text).split())
    return out if len(out) <= limit else out[: limit - 1] + "…"


def read_module(config: WasmPluginConfig) -> bytes:
    path = Path(config.path).expanduser()
    if not path.exists():
        raise PluginMissing(f"file not found: {path}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise LoadError(f"cannot read {path}: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class ModuleInfo:
    """What the binary says about itself: imports and initial memory."""

    imports: frozenset[tuple[str, str]] = frozenset()
    #: initial memory in 64 KiB pages (``None`` if unknown)
    initial_pages: int | None = None


def module_info(wasm: bytes) -> ModuleInfo:
    """Read the import and memory sections of a binary module.

    Anything unexpected (a text module, a truncated file) gives what was read
    so far; compiling and the trial call are what decide whether it loads.
    """
    imports: set[tuple[str, str]] = set()
    pages: int | None = None
    try:
        if wasm[:4] != b"\0asm":
            return ModuleInfo()

        def leb(i: int) -> tuple[int, int]:
            result = shift = 0
            while True:
                byte = wasm[i]
                i += 1
                result |= (byte & 0x7F) << shift
                shift += 7
                if byte < 0x80:
                    return result, i

        def limits(i: int) -> tuple[int, int]:
            flags, i = leb(i)
            minimum, i = leb(i)
            if flags & 1:
                _, i = leb(i)
            return minimum, i

        def name(i: int) -> tuple[str, int]:
            n, i = leb(i)
            return wasm[i: i + n].decode("utf-8", "replace"), i + n

        i = 8
        while i < len(wasm):
            section = wasm[i]
            size, i = leb(i + 1)
            end = i + size
            if section == 2:
                count, i = leb(i)
                for _ in range(count):
                    module, i = name(i)
                    field_name, i = name(i)
                    kind = wasm[i]
                    i += 1
                    imports.add((module, field_name))
                    if kind == 0:  # function: type index
                        _, i = leb(i)
                    elif kind == 1:  # table: reftype + limits
                        _, i = limits(i + 1)
                    elif kind == 2:  # memory: limits
                        pages, i = limits(i)
                    elif kind == 3:  # global: valtype + mutability
                        i += 2
                    else:
                        break
            elif section == 5:
                count, i = leb(i)
                if count:
                    pages, _ = limits(i)
            i = end
    except (IndexError, ValueError):
        pass
    return ModuleInfo(frozenset(imports), pages)


def manifest(config: WasmPluginConfig, wasm: bytes, grants: Grants) -> dict[str, Any]:
    """The Extism manifest: the module plus every limit and grant of the config."""
    return {
        "wasm": [{"data": wasm}],
        "memory": {"max_pages": int(config.memory_max_pages)},
        "allowed_hosts": list(grants.allowed_hosts),
        "timeout_ms": int(config.timeout_ms),
        "config": {str(k): str(v) for k, v in config.config.items()},
    }


def load_plugin(config: WasmPluginConfig, store: Any = None, environ: Mapping[str, str] | None = None) -> LoadedPlugin:
    """Read, pin-check, compile, trial-instantiate and describe one plugin (blocking)."""
    wasm = read_module(config)
    if config.sha256:
        digest = hashlib.sha256(wasm).hexdigest()
        if digest != config.sha256.strip().lower():
            raise LoadError(f"sha256 mismatch: the config pins {config.sha256.lower()}, the file is {digest}")
    grants = parse_grants(config.capabilities)
    functions = kv_functions() if grants.store_namespace else []

    started = time.perf_counter()
    try:
        compiled = CompiledPlugin(manifest(config, wasm, grants), wasi=False, functions=functions)
    except extism.Error as exc:
        raise LoadError(f"not a valid WebAssembly module: {_strip_prefix(exc)}") from None
    compile_ms = (time.perf_counter() - started) * 1000

    try:
        trial = extism.Plugin(compiled, functions=functions)
    except extism.Error as exc:
        raise LoadError(_instantiate_reason(str(exc), grants)) from None
    try:
        if not trial.function_exists("describe"):
            raise LoadError("missing export: describe")
        try:
            raw = bytes(trial.call("describe", b""))
        except extism.Error as exc:
            raise LoadError(_describe_reason(str(exc), config, wasm)) from None
        warnings = list(grants.warnings)
        kind, description, tools, asked, verify = _parse_describe(raw, config, warnings)
        missing = [e for e in REQUIRED_EXPORTS[kind] if not trial.function_exists(e)]
        if missing:
            raise LoadError(f"a {kind} plugin must export {', '.join(missing)} (missing export)")
    finally:
        _free(trial)
        EXTISM_LOG.drain()

    plugin = LoadedPlugin(
        config=config, kind=kind, description=description, tools=tools, asked=asked, grants=grants,
        compiled=compiled, functions=functions, compile_ms=compile_ms, store=store, verify=verify,
        warnings=warnings, makes_http=(HTTP_IMPORT in module_info(wasm).imports),
    )
    if kind == "channel":
        _load_secrets(plugin, os.environ if environ is None else environ)
    return plugin


def _strip_prefix(exc: BaseException) -> str:
    text = one_line(exc)
    for prefix in ("Unable to compile Extism plugin: ", "Unable to create Extism plugin: "):
        if text.startswith(prefix):
            text = text[len(prefix):]
    return text


def _instantiate_reason(message: str, grants: Grants) -> str:
    m = re.search(r"unknown import: `([^`]+)`", message)
    if m:
        what = m.group(1)
        hint = ""
        if what.startswith("extism:host/user::kv_"):
            hint = " (the kv_* host functions need a store:NAME capability)"
        return f"imports a host function it was not granted: {what}{hint}"
    if message.strip() == "oom":
        return "cannot instantiate within memory_max_pages (oom)"
    return f"cannot instantiate: {_strip_prefix(Exception(message))}"


def _describe_reason(message: str, config: WasmPluginConfig, wasm: bytes) -> str:
    text = message.strip()
    if text == "oom" or "OutOfMemory" in text:
        need = module_info(wasm).initial_pages
        if need is not None and config.memory_max_pages < need:
            return (f"memory_max_pages={config.memory_max_pages} is below what the module needs "
                    f"({need} pages) (oom)")
        return f"describe ran out of memory with memory_max_pages={config.memory_max_pages} (oom)"
    if text == "timeout":
        return f"describe timed out after {config.timeout_ms}ms"
    if _BACKTRACE in text:
        return "describe crashed (trap)"
    return f"describe failed: {one_line(text)}"


def _parse_describe(
    raw: bytes, config: WasmPluginConfig, warnings: list[str]
) -> tuple[str, str, list[ToolSpec], list[str], tuple[str, str] | None]:
    try:
        d = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise LoadError(f"describe did not return valid JSON: {one_line(raw[:80].decode('utf-8', 'replace'))!r}") from None
    if not isinstance(d, dict):
        raise LoadError(f"describe must return a JSON object, not {type(d).__name__}")
    kind = d.get("kind")
    if kind not in KINDS:
        raise LoadError(f"describe: kind must be \"tool\" or \"channel\" (got {json.dumps(kind)})")
    # describe's "name" is informative only: the config's name is authoritative
    description = d.get("description", "")
    if not isinstance(description, str):
        raise LoadError("describe: description must be a string")
    asked = d.get("capabilities", [])
    if not isinstance(asked, list) or not all(isinstance(c, str) for c in asked):
        raise LoadError("describe: capabilities must be a list of strings")

    tools: list[ToolSpec] = []
    raw_tools = d.get("tools", [])
    if not isinstance(raw_tools, list):
        raise LoadError("describe: tools must be a list")
    if kind == "tool":
        seen: set[str] = set()
        for i, t in enumerate(raw_tools):
            if not isinstance(t, dict):
                raise LoadError(f"describe: tools[{i}] must be an object")
            tname = t.get("name")
            if not isinstance(tname, str) or not tname:
                raise LoadError(f"describe: tools[{i}].name must be a non-empty string")
            tdesc = t.get("description", "")
            if not isinstance(tdesc, str):
                raise LoadError(f"describe: tools[{i}].description must be a string")
            schema = t.get("input_schema", {"type": "object"})
            if not isinstance(schema, dict):
                raise LoadError(f"describe: tools[{i}].input_schema must be an object")
            if not TOOL_NAME.match(tname):
                warnings.append(f"tool {tname!r} refused: a tool name is 1-64 letters, digits, _ or -")
                continue
            if tname in seen:
                warnings.append(f"tool {tname!r} listed twice; the first is used")
                continue
            seen.add(tname)
            tools.append(ToolSpec(tname, tdesc, schema))
        if not tools:
            raise LoadError("describe: a tool plugin must list at least one tool")

    verify = None
    raw_verify = d.get("verify")
    if raw_verify is not None and kind == "channel":
        if (not isinstance(raw_verify, dict) or not isinstance(raw_verify.get("header"), str)
                or not isinstance(raw_verify.get("secret"), str)
                or not raw_verify["header"] or not raw_verify["secret"]):
            raise LoadError("describe: verify must be {\"header\": string, \"secret\": string}")
        verify = (raw_verify["header"], raw_verify["secret"])
    return kind, description, tools, list(asked), verify


def _load_secrets(plugin: LoadedPlugin, environ: Mapping[str, str]) -> None:
    """Read the channel's secrets from the environment, once (values never logged)."""
    # (warnings are phrased so that no "secret: value" shape appears in a log line)
    verify_secret = plugin.verify[1] if plugin.verify is not None else None
    for name, var in plugin.config.secrets.items():
        value = environ.get(var)
        if value:
            plugin.secrets[name] = value
        elif name == verify_secret:
            plugin.warnings.append(
                f"environment variable {var} (for verify, secret {name}) is not set: "
                f"every webhook will be refused (401)")
        else:
            plugin.warnings.append(f"environment variable {var} (secret {name}) is not set")
    if verify_secret is not None and verify_secret not in plugin.config.secrets:
        plugin.warnings.append(
            f"verify needs the secret named {verify_secret}, which [[plugins]] secrets does not name: "
            f"every webhook will be refused (401)")


# ---------------------------------------------------------------- calling


def _free(instance: Any) -> None:
    try:
        instance.__del__()
    except Exception:  # noqa: BLE001
        pass


def call_export(plugin: LoadedPlugin, export: str, payload: bytes) -> bytes:
    """Run ``export`` in a fresh instance; the output bytes, or :class:`CallFailure` (blocking)."""
    config = plugin.config
    ctx = KvContext(plugin.store, plugin.grants.store_namespace, plugin.name) if plugin.grants.store_namespace else None
    instance = None
    started = time.perf_counter()
    try:
        instance = extism.Plugin(plugin.compiled, functions=plugin.functions)
        buf = instance.call(export, payload, parse=None, host_context=ctx)
        size = len(buf)
        if size > config.max_output_bytes:
            raise CallFailure("too_large", size=size)
        return bytes(buf)
    except extism.Error as exc:
        raise _classify(str(exc), instance, plugin, time.perf_counter() - started) from None
    finally:
        if instance is not None:
            _free(instance)
        EXTISM_LOG.drain()


def _classify(message: str, instance: Any, plugin: LoadedPlugin, elapsed_s: float) -> CallFailure:
    config = plugin.config
    text = message.strip()
    if text == "timeout" and elapsed_s * 1000 >= config.timeout_ms * 0.5:
        return CallFailure("timeout")
    if text in ("oom", "OutOfMemory"):
        return CallFailure("oom")
    if _BACKTRACE in text:
        cause = None
        if instance is not None:
            try:
                cause = EXTISM_LOG.cause_for(str(instance.id))
            except Exception:  # noqa: BLE001
                cause = None
        if cause and cause.startswith("wasm trap: "):
            # raised by the guest's own code
            cause = cause[len("wasm trap: "):]
            if "out of memory" in cause.lower():
                return CallFailure("oom", cause)
            return CallFailure("trap", cause)
        # raised by a kernel host function: for a module that makes HTTP calls
        # that is the request (denied host, connection refused, DNS ...)
        if cause and (cause.startswith("HTTP request") or plugin.makes_http):
            return CallFailure("http", cause)
        return CallFailure("trap", cause or "")
    return CallFailure("error", text[:MAX_ERROR_TEXT])


def failure_text(name: str, failure: CallFailure, config: WasmPluginConfig, what: str = "tool") -> str:
    """A short message for a failed call of tool (or channel) ``name``."""
    k, d = failure.kind, failure.detail
    if k == "timeout":
        return f"{what} {name} timed out after {config.timeout_ms}ms"
    if k == "oom":
        return f"{what} {name} ran out of memory"
    if k == "trap":
        return f"{what} {name} crashed (trap{': ' + d if d else ''})"
    if k == "http":
        return f"{what} {name}: HTTP request denied or failed ({d})"
    if k == "too_large":
        return f"{what} {name} output too large ({failure.size} bytes > max_output_bytes {config.max_output_bytes})"
    if k == "bad_output":
        return f"{what} {name} returned invalid JSON{' (' + d + ')' if d else ''}"
    return f"{what} {name} failed: {d}"


def run_tool(plugin: LoadedPlugin, call: ToolCall) -> ToolResult:
    """Call ``handle_tool_call`` for one tool call (blocking); never raises."""
    try:
        payload = json.dumps({"name": call.name, "input": dict(call.input)}, ensure_ascii=False).encode()
    except (TypeError, ValueError) as exc:
        return ToolResult(call.id, f"tool {call.name}: input is not JSON-serialisable ({exc})", True)
    try:
        out = call_export(plugin, "handle_tool_call", payload)
        content, is_error = parse_tool_output(out)
    except CallFailure as failure:
        return ToolResult(call.id, failure_text(call.name, failure, plugin.config), True)
    except Exception as exc:  # noqa: BLE001 - a sandbox problem is the tool's error, never the gateway's
        log.exception("event=wasm_call_failed plugin=%s tool=%s", plugin.name, call.name)
        return ToolResult(call.id, f"tool {call.name} failed: {one_line(exc, 200)}", True)
    return ToolResult(call.id, content, is_error)


def parse_tool_output(out: bytes) -> tuple[str, bool]:
    """``{"content": str, "is_error": bool}`` → its two fields; :class:`CallFailure` otherwise."""
    try:
        data = json.loads(out)
    except (ValueError, UnicodeDecodeError):
        raise CallFailure("bad_output") from None
    if not isinstance(data, dict) or not isinstance(data.get("content"), str):
        raise CallFailure("bad_output", 'expected {"content": string, "is_error": bool}')
    is_error = data.get("is_error", False)
    if not isinstance(is_error, bool):
        raise CallFailure("bad_output", "is_error must be true or false")
    return data["content"], is_error
