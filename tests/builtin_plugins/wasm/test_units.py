"""The ``wasm`` plugin's parts on their own: grants, host functions, module reading, log causes, outputs."""

from __future__ import annotations

import json
import logging
import random
import threading

import extism
import pytest
from extism.extism import CompiledPlugin

from builtin_plugins.wasm import bridge, calls
from builtin_plugins.wasm.callctx import CallContext, CallFailure
from builtin_plugins.wasm.capabilities import GrantError, host_granted, not_granted, parse_grants
from builtin_plugins.wasm.extlog import ExtismLog, _cause
from builtin_plugins.wasm.hostfns import MAX_KEY_BYTES, MAX_VALUE_BYTES, kv_functions
from builtin_plugins.wasm.plugin import WasmPlugin
from exoclaw_hooks import AgentConfig, Route, ToolCall, ToolContext, ToolResult, make_session_key, split_session_key
from builtin_plugins.wasm.capabilities import RESERVED_NAMESPACES
from builtin_plugins.wasm.settings import WasmPluginConfig
from exoclaw_hooks.testing import FakeHost, tables_of

HTTP_IMPORT = ("extism:host/env", "http_request")


def KvContext(store, namespace, plugin):  # noqa: N802 - one call's context with a kv namespace
    return CallContext(plugin, store=store, namespace=namespace)

# ---------------------------------------------------------------- capabilities


def test_grants():
    g = parse_grants(["http:api.telegram.org", "http:127.0.0.1", "store:notes", "http:[::1]"])
    assert g.allowed_hosts == ("api.telegram.org", "127.0.0.1", "::1")
    assert g.store_namespace == "notes" and g.warnings == ()
    assert parse_grants([]).allowed_hosts == () and parse_grants([]).store_namespace is None  # all denied
    assert parse_grants(["http:a.org", "http:*"]).allowed_hosts == ("*",)
    several = parse_grants(["store:a", "store:b"])
    assert several.store_namespace == "a" and "using a" in several.warnings[0]
    odd = parse_grants(["net:x", "http:", "store:"])
    assert odd.granted == () and len(odd.warnings) == 3


def test_reserved_namespaces_are_never_granted():
    assert "metering" in RESERVED_NAMESPACES
    for name in sorted(RESERVED_NAMESPACES):
        with pytest.raises(GrantError, match=f"store:{name} is the gateway's own data"):
            parse_grants([f"store:{name}"])
    assert parse_grants(["store:metering-notes"]).store_namespace == "metering-notes"


def test_host_granted():
    assert host_granted("127.0.0.1", ["127.0.0.1"])
    assert host_granted("API.Example.com.", ["api.example.com"])
    assert host_granted("[::1]", ["::1"]) and host_granted("::1", ["[::1]"])
    assert host_granted("anything.org", ["*"]) and host_granted("a.example.com", ["*.example.com"])
    assert not host_granted("localhost", ["127.0.0.1"])
    assert not host_granted("example.com.evil.org", ["example.com"])
    assert not host_granted("", ["*"]) and not host_granted("x.org", [])


def test_not_granted():
    assert not_granted(["http:*"], ["http:127.0.0.1"]) == ["http:*"]
    assert not_granted(["http:api.telegram.org", "store:kv"], ["http:*"]) == ["store:kv"]
    assert not_granted(["store:kv"], ["store:kv"]) == []


# ---------------------------------------------------------------- host functions

KV_WAT = """(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/user" "kv_get" (func $kv_get (param i64) (result i64)))
  (import "extism:host/user" "kv_set" (func $kv_set (param i64 i64)))
  (import "extism:host/user" "kv_delete" (func $kv_delete (param i64)))
  (memory (export "memory") 1)
  (func $fill (param $n i64) (param $c i32) (result i64) (local $o i64) (local $i i64)
    (local.set $o (call $alloc (local.get $n)))
    (block $done (loop $next
      (br_if $done (i64.ge_u (local.get $i) (local.get $n)))
      (call $store_u8 (i64.add (local.get $o) (local.get $i)) (local.get $c))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br $next)))
    (local.get $o))
  (func $out (param $o i64)
    (if (i64.eqz (local.get $o))
      (then (call $output_set (i64.const 0) (i64.const 0)))
      (else (call $output_set (local.get $o) (call $length (local.get $o))))))
  ;; set KEYxVALUE bytes then read the key back
  (func $setget (param $k i64) (param $v i64) (result i32) (local $key i64)
    (local.set $key (call $fill (local.get $k) (i32.const 107)))
    (call $kv_set (local.get $key) (call $fill (local.get $v) (i32.const 118)))
    (call $out (call $kv_get (local.get $key)))
    (i32.const 0))
  (func (export "max_sizes") (result i32) (call $setget (i64.const 256) (i64.const 65536)))
  (func (export "long_key") (result i32) (call $setget (i64.const 257) (i64.const 1)))
  (func (export "long_value") (result i32) (call $setget (i64.const 1) (i64.const 65537)))
  (func (export "get_long_key") (result i32) (call $out (call $kv_get (call $fill (i64.const 300) (i32.const 107)))) (i32.const 0))
  (func (export "empty_value") (result i32) (call $setget (i64.const 1) (i64.const 0)))
  (func (export "delete") (result i32)
    (call $kv_delete (call $fill (i64.const 1) (i32.const 107))) (i32.const 0))
)"""


class DictStore:
    def __init__(self) -> None:
        self.data: dict[tuple[str, str], str] = {}
        self.lock = threading.Lock()

    def kv_get(self, ns, key):
        with self.lock:
            return self.data.get((ns, key))

    def kv_set(self, ns, key, value):
        with self.lock:
            self.data[(ns, key)] = value

    def kv_delete(self, ns, key):
        with self.lock:
            self.data.pop((ns, key), None)


class BrokenStore:
    def kv_get(self, ns, key):
        raise RuntimeError("database is locked")

    kv_set = kv_delete = kv_get


@pytest.fixture(scope="module")
def kv_module():
    return CompiledPlugin(KV_WAT, functions=kv_functions())


def run(compiled, export, ctx) -> bytes:
    return bytes(extism.Plugin(compiled, functions=kv_functions()).call(export, b"", host_context=ctx))


def test_kv_limits(kv_module, caplog):
    caplog.set_level(logging.WARNING, logger="exoclaw.wasm")
    store = DictStore()
    ctx = lambda: KvContext(store, "ns", "raw")  # noqa: E731
    assert run(kv_module, "max_sizes", ctx()) == b"v" * MAX_VALUE_BYTES
    assert store.data[("ns", "k" * MAX_KEY_BYTES)] == "v" * MAX_VALUE_BYTES
    store.data.clear()
    assert run(kv_module, "long_key", ctx()) == b""  # refused, reads as absent
    assert run(kv_module, "long_value", ctx()) == b""
    assert store.data == {}
    store.data[("ns", "k" * 300)] = "planted"
    assert run(kv_module, "get_long_key", ctx()) == b""
    store.data[("ns", "k")] = "old"
    assert run(kv_module, "empty_value", ctx()) == b""  # an empty value means absent: deleted
    assert ("ns", "k") not in store.data
    store.data[("ns", "k")] = "x"
    run(kv_module, "delete", ctx())
    assert ("ns", "k") not in store.data
    refused = [r.getMessage() for r in caplog.records if "event=wasm_kv_refused" in r.getMessage()]
    assert any("key longer than 256 bytes" in line for line in refused)
    assert any("value larger than 65536 bytes" in line for line in refused)


def test_kv_namespaces_are_separate(kv_module):
    store = DictStore()
    run(kv_module, "max_sizes", KvContext(store, "a", "p"))
    assert {ns for ns, _ in store.data} == {"a"}
    assert run(kv_module, "get_long_key", KvContext(store, "b", "p")) == b""


def test_kv_host_functions_never_raise_into_the_guest(kv_module, caplog):
    caplog.set_level(logging.WARNING, logger="exoclaw.wasm")
    assert run(kv_module, "max_sizes", KvContext(BrokenStore(), "ns", "p")) == b""  # reads 0, call completes
    assert run(kv_module, "max_sizes", None) == b""  # no context: nothing linked to a store
    lines = [r.getMessage() for r in caplog.records if "database is locked" in r.getMessage()]
    assert lines and len(lines) <= 3


# ---------------------------------------------------------------- modules and outputs


def test_module_info(wasm_build):
    echo = bridge.module_info(wasm_build["echo"].read_bytes())
    assert echo.initial_pages == 17
    assert HTTP_IMPORT not in echo.imports
    assert HTTP_IMPORT in bridge.module_info(wasm_build["fetch"].read_bytes()).imports
    kv = bridge.module_info(wasm_build["kv"].read_bytes())
    assert {n for m, n in kv.imports if m == "extism:host/user"} == {"kv_get", "kv_set", "kv_delete"}
    assert bridge.module_info(b"junk") == bridge.ModuleInfo()
    assert bridge.module_info(wasm_build["echo"].read_bytes()[:40]).initial_pages is None


@pytest.mark.parametrize("out, expected", [
    (b'{"content": "x", "is_error": true}', ("x", True)),
    (b'{"content": "x"}', ("x", False)),
])
def test_tool_output(out, expected):
    assert calls.parse_tool_output(out) == expected


@pytest.mark.parametrize("out", [b"not json", b"[]", b'{"content": 1}', b'{"content": "x", "is_error": "no"}', b"\xff"])
def test_bad_tool_output(out):
    with pytest.raises(CallFailure) as err:
        calls.parse_tool_output(out)
    assert err.value.kind == "bad_output"
    text = calls.failure_text("t", err.value, WasmPluginConfig(name="p", path="x"))
    assert text.startswith("tool t returned invalid JSON")


def test_failure_texts():
    cfg = WasmPluginConfig(name="p", path="x", timeout_ms=250, max_output_bytes=10, memory_max_pages=32)
    f = calls.failure_text
    assert f("t", CallFailure("timeout"), cfg) == "tool t timed out after 250ms"
    assert f("t", CallFailure("oom"), cfg) == "tool t ran out of memory (memory_max_pages 32)"
    assert f("t", CallFailure("stack_overflow", "call stack exhausted"), cfg) == "tool t crashed: stack overflow"
    assert f("t", CallFailure("unreachable"), cfg).startswith("tool t crashed: unreachable instruction")
    assert f("t", CallFailure("trap"), cfg) == "tool t crashed (trap)"
    assert f("t", CallFailure("trap", "integer divide by zero"), cfg) == "tool t crashed (trap: integer divide by zero)"
    assert f("t", CallFailure("host_denied", "http://x/ is not granted"), cfg) == \
        "tool t: HTTP request denied: http://x/ is not granted"
    assert f("t", CallFailure("http", "connection refused"), cfg) == "tool t: HTTP request failed: connection refused"
    assert f("t", CallFailure("cancelled", "the gateway is stopping"), cfg) == \
        "tool t was stopped: the gateway is stopping"
    assert f("t", CallFailure("too_large", size=11), cfg) == "tool t output too large (11 bytes > max_output_bytes 10)"
    assert f("t", CallFailure("error", "nope"), cfg) == "tool t failed: nope"


@pytest.mark.parametrize("cause, kind", [
    ("wasm trap: call stack exhausted", "stack_overflow"),
    ("wasm trap: wasm `unreachable` instruction executed", "unreachable"),
    ("wasm trap: out of bounds memory access", "trap"),
    ("invalid handle offset for log message: 12", "trap"),
    (None, "trap"),
])
def test_trap_kinds(cause, kind):
    assert calls.trap_failure(cause).kind == kind


def test_caller_of():
    route = Route("a", make_session_key("a", "tele:gram", "100%", "chat"))
    assert calls.caller_of(route) == {
        "agent": "a", "channel": "tele:gram", "account": "100%", "peer": "chat", "person": "a:tele%3Agram:100%25"}
    odd = calls.caller_of(Route("a", "custom-session"))
    assert odd == {"agent": "a", "channel": "", "account": "", "peer": "", "person": "custom-session"}
    assert calls.caller_of(None) is None


def test_session_keys_split_back_into_their_parts():
    rng = random.Random(5)
    for _ in range(2000):
        parts = tuple("".join(rng.choice("%:3A25a") for _ in range(rng.randint(0, 6))) for _ in range(4))
        assert split_session_key(make_session_key(*parts)) == parts
    assert split_session_key("a:b:c") is None and split_session_key("a:b:c:d:e") is None


def test_log_cause_extraction():
    rec = ('2026-01-01T00:00:00Z ERROR extism::plugin: call to handle_tool_call encountered an error: '
           'error while executing at wasm backtrace:\n    0:    0x65b - <unknown>!<wasm function 14>\n\n'
           'Caused by:\n    HTTP request to http://x/ is not allowed\n\nStack backtrace:\n   0: foo\n'
           ' plugin="4c0faf41-956e-49f2-b6b5-82537b683309"\n')
    assert _cause(rec) == "HTTP request to http://x/ is not allowed"
    log = ExtismLog()
    log._on_record(rec)
    log._on_record("no cause here plugin=\"4c0faf41-956e-49f2-b6b5-82537b683300\"\n")
    assert dict(log._causes) == {"4c0faf41-956e-49f2-b6b5-82537b683309": "HTTP request to http://x/ is not allowed"}
    short = 'x: error\n\nCaused by:\n    io: Connection refused (os error 111)\n plugin="4c0faf41-956e-49f2-b6b5-82537b683309"\n'
    log._on_record(short)
    assert log._causes["4c0faf41-956e-49f2-b6b5-82537b683309"] == "io: Connection refused (os error 111)"
    for i in range(100):
        log._on_record(f'Caused by:\n  c{i}\n plugin="00000000-0000-0000-0000-{i:012d}"\n')
    assert len(log._causes) == 64


def test_unserialisable_input_is_an_error_result(wasm_build):
    lp = bridge.load_plugin(WasmPluginConfig(name="echo", path=str(wasm_build["echo"])))
    res = calls.run_tool(lp, ToolCall("id1", "echo", {"text": object()}))
    assert res.is_error and "JSON" in res.content and res.tool_use_id == "id1"


# ---------------------------------------------------------------- hooks without a gateway


async def test_dispatch_hook_contract(wasm_build):
    plugin = WasmPlugin()
    tables_of(plugin)["plugins"].apply((
        WasmPluginConfig(name="echo", path=str(wasm_build["echo"])),
        WasmPluginConfig(name="testtools", path=str(wasm_build["testtools"])),
    ))
    host = FakeHost()
    await plugin.gateway_startup(host)
    agent = AgentConfig(id="a", provider="echo", model="echo", tools=("echo",))
    ctx = ToolContext(agent, Route("a", "a:t:u:main"))
    try:
        assert plugin.dispatch_tool(ToolCall("1", "nope", {}), ctx) is None
        assert plugin.dispatch_tool(ToolCall("1", "counter", {}), ctx) is None  # not on the agent's list
        pending = plugin.dispatch_tool(ToolCall("1", "echo", {"text": "x"}), ctx)
        assert await pending == ToolResult("1", "x", False)
    finally:
        await plugin.gateway_shutdown(host)
    # after shutdown nothing is ours any more
    assert plugin.dispatch_tool(ToolCall("1", "echo", {"text": "x"}), ctx) is None
    assert plugin.list_tools(agent) == []
    # the report survives shutdown (``exoclaw plugins`` reads it) and has the keys the core reads
    entry = plugin.plugin_report(host)[0]
    assert {"name", "kind", "tools", "capabilities", "loaded", "reason", "path", "not_granted"} <= set(entry)
    assert entry["loaded"] is True and json.dumps(entry)


async def test_no_plugins_configured(tmp_path):
    plugin = WasmPlugin()
    host = FakeHost()
    await plugin.gateway_startup(host)
    assert plugin.plugin_report(host) == [] and plugin.list_tools(AgentConfig(id="a", provider="e", model="e")) == []
    await plugin.gateway_shutdown(host)

