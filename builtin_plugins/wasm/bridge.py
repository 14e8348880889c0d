"""Loading a WASM plugin: the blocking half of the ``wasm`` plugin's start-up.

Load (once, at start-up, in a worker thread): read the file, check the
optional ``sha256`` pin, compile it once (``CompiledPlugin``, with the
manifest limits and the host functions it may use), make ONE trial
instance, check the exports its kind needs and ask it to ``describe``
itself. Any failure raises :class:`LoadError` with one sentence saying why.
Calling a loaded plugin is :mod:`.calls`.

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

from exoclaw_hooks import ToolSpec

from .settings import WasmPluginConfig

from .capabilities import GrantError, Grants, parse_grants
from .engines import Engines
from .extlog import EXTISM_LOG
from .hostfns import kv_functions
from .hosthttp import http_functions

log = logging.getLogger("exoclaw.wasm")

KINDS = ("tool", "channel")
#: exports each kind needs besides ``describe``
REQUIRED_EXPORTS = {"tool": ("handle_tool_call",), "channel": ("parse_incoming", "format_outgoing")}
#: what providers accept as a tool name (Anthropic's rule, the strictest)
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_BACKTRACE = "wasm backtrace"


class LoadError(Exception):
    """A plugin cannot be loaded; ``str()`` is the one-line reason."""


class PluginMissing(LoadError):
    """The plugin's file does not exist (a warning, not an error)."""


@dataclass
class LoadedPlugin:
    """A compiled, described plugin, ready for calls."""

    config: WasmPluginConfig
    kind: str
    description: str
    tools: list[ToolSpec]
    asked: list[str]
    grants: Grants
    #: the compiled module; calls take one of ``engines`` (one per call running at once)
    compiled: Any
    functions: list[Any]
    compile_ms: float
    engines: Engines
    store: Any = None
    #: channels: (header, secret name) from describe's ``verify``
    verify: tuple[str, str] | None = None
    #: channels: secret name -> value, read from the environment at load (never logged)
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    #: one sentence per problem found while loading that did not reject the plugin
    warnings: list[str] = field(default_factory=list)

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


def manifest(config: WasmPluginConfig, wasm: bytes) -> dict[str, Any]:
    """The Extism manifest: the module and its limits.

    ``allowed_hosts`` is empty on purpose: the host's own ``http_request``
    (:mod:`.hosthttp`) replaces Extism's and checks the grant at every hop;
    were it ever not linked, Extism would deny every request.
    """
    return {
        "wasm": [{"data": wasm}],
        "memory": {"max_pages": int(config.memory_max_pages)},
        "allowed_hosts": [],
        "timeout_ms": int(config.timeout_ms),
        "config": {str(k): str(v) for k, v in config.config.items()},
    }


def host_functions(grants: Grants) -> list[Any]:
    """What a plugin is linked with: the host's HTTP always, the ``kv_*`` functions with a ``store:`` grant."""
    return http_functions() + (kv_functions() if grants.store_namespace else [])


def load_plugin(config: WasmPluginConfig, store: Any = None, environ: Mapping[str, str] | None = None) -> LoadedPlugin:
    """Read, pin-check, compile, trial-instantiate and describe one plugin (blocking)."""
    wasm = read_module(config)
    if config.sha256:
        digest = hashlib.sha256(wasm).hexdigest()
        if digest != config.sha256.strip().lower():
            raise LoadError(f"sha256 mismatch: the config pins {config.sha256.lower()}, the file is {digest}")
    try:
        grants = parse_grants(config.capabilities)
    except GrantError as exc:
        raise LoadError(str(exc)) from None
    functions = host_functions(grants)

    started = time.perf_counter()
    try:
        compiled = CompiledPlugin(manifest(config, wasm), wasi=False, functions=functions)
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
        free(trial)
        EXTISM_LOG.drain()

    def another() -> Any:
        return CompiledPlugin(manifest(config, wasm), wasi=False, functions=functions)

    plugin = LoadedPlugin(
        config=config, kind=kind, description=description, tools=tools, asked=asked, grants=grants,
        compiled=compiled, functions=functions, compile_ms=compile_ms, engines=Engines(compiled, another),
        store=store, verify=verify, warnings=warnings,
    )
    if kind == "channel":
        _load_secrets(plugin, os.environ if environ is None else environ)
    return plugin


def free(instance: Any) -> None:
    """Free an instance now (not whenever the garbage collector gets to it)."""
    try:
        instance.__del__()
    except Exception:  # noqa: BLE001
        pass


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
