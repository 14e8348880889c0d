"""The shipped Zig plugins (and the test-only ``testtools`` module), loaded with the real Extism runtime (no gateway)."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import extism
import pytest
from extism.extism import CompiledPlugin

from tests.wasm_plugins.conftest import kv_stored_key

BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "wasm_plugins" / "build.py"
PLUGINS = ("echo", "kv", "fetch", "mock", "telegram")

USER_NS = "extism:host/user"

TRICKY = 'He said "hi" \\o/\nline2\r\n\ttab \u00e9\u4e2d\U0001F600 \u2028 \x01\x1f </script> {"x":1}'


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def _leb(b: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = b[i]
        i += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, i


def _name(b: bytes, i: int) -> tuple[str, int]:
    n, i = _leb(b, i)
    return b[i : i + n].decode(), i + n


def wasm_sections(b: bytes) -> tuple[list[tuple[str, str, int]], list[tuple[str, int]]]:
    """(imports as (module, name, kind), exports as (name, kind)) of a module."""
    assert b[:4] == b"\0asm", "not a wasm module"
    i = 8
    imports: list[tuple[str, str, int]] = []
    exports: list[tuple[str, int]] = []
    while i < len(b):
        section = b[i]
        size, i = _leb(b, i + 1)
        end = i + size
        if section == 2:  # import
            count, i = _leb(b, i)
            for _ in range(count):
                module, i = _name(b, i)
                field, i = _name(b, i)
                kind = b[i]
                i += 1
                if kind == 0:  # func: type index
                    _, i = _leb(b, i)
                elif kind == 1:  # table: reftype + limits
                    i += 1
                    flags, i = _leb(b, i + 0)
                    _, i = _leb(b, i)
                    if flags & 1:
                        _, i = _leb(b, i)
                elif kind == 2:  # memory: limits
                    flags, i = _leb(b, i)
                    _, i = _leb(b, i)
                    if flags & 1:
                        _, i = _leb(b, i)
                elif kind == 3:  # global: valtype + mut
                    i += 2
                else:
                    raise AssertionError(f"unknown import kind {kind}")
                imports.append((module, field, kind))
        elif section == 7:  # export
            count, i = _leb(b, i)
            for _ in range(count):
                field, i = _name(b, i)
                kind = b[i]
                _, i = _leb(b, i + 1)
                exports.append((field, kind))
        i = end
    return imports, exports


def user_imports(b: bytes) -> set[str]:
    return {name for module, name, _ in wasm_sections(b)[0] if module == USER_NS}


def plugin(wasm: bytes, functions: list | None = None, **manifest: Any) -> extism.Plugin:
    """A fresh instance (always passing ``functions=`` explicitly)."""
    return extism.Plugin({"wasm": [{"data": wasm}], **manifest}, wasi=False, functions=functions or [])


def call_json(wasm: bytes, export: str, payload: Any, functions: list | None = None, **manifest: Any) -> Any:
    data = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
    return json.loads(plugin(wasm, functions, **manifest).call(export, data))


def tool(wasm: bytes, name: str, args: dict, functions: list | None = None, caller: dict | None = None,
         **manifest: Any) -> dict:
    request: dict[str, Any] = {"name": name, "input": args}
    if caller is not None:
        request["caller"] = caller
    return call_json(wasm, "handle_tool_call", request, functions, **manifest)


def kv_functions(store: dict[str, str], log: list | None = None) -> list:
    """Host functions kv_get/kv_set/kv_delete over a dict (as the gateway offers them).

    An exception in a host function never reaches the guest, so each one
    catches everything and records it in ``log``.
    """
    errors = log if log is not None else []
    i64 = extism.ValType.I64

    @extism.host_fn(name="kv_get", namespace=USER_NS, signature=([i64], [i64]))
    def kv_get(current, params, results, *user_data):
        try:
            key = current.input_string(params[0])
            if key in store:
                current.return_string(results[0], store[key])
            else:
                results[0].value = 0
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
            results[0].value = 0

    @extism.host_fn(name="kv_set", namespace=USER_NS, signature=([i64, i64], []))
    def kv_set(current, params, results, *user_data):
        try:
            store[current.input_string(params[0])] = current.input_string(params[1])
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    @extism.host_fn(name="kv_delete", namespace=USER_NS, signature=([i64], []))
    def kv_delete(current, params, results, *user_data):
        try:
            store.pop(current.input_string(params[0]), None)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    return [kv_get, kv_set, kv_delete]


# --------------------------------------------------------------------------
# build script
# --------------------------------------------------------------------------


def test_build_is_incremental(wasm_build):
    proc = subprocess.run([sys.executable, str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == len(PLUGINS)
    assert all("up to date" in line for line in lines), proc.stdout


def test_build_failure_exits_nonzero_with_compiler_message(tmp_path):
    bad = tmp_path / "plugins" / "broken"
    bad.mkdir(parents=True)
    (bad / "plugin.zig").write_text('const ex = @import("exoclaw");\nexport fn describe() i32 { return nope; }\n')
    proc = subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), "--plugins-dir", str(tmp_path / "plugins"), "--out-dir", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode != 0
    assert "broken" in proc.stderr and "nope" in proc.stderr, proc.stderr
    assert not (tmp_path / "out" / "broken.wasm").exists()


# --------------------------------------------------------------------------
# describe and module shape
# --------------------------------------------------------------------------


def describe(wasm_bytes: dict[str, bytes], name: str) -> dict:
    return call_json(wasm_bytes[name], "describe", b"", kv_functions({}) if name == "kv" else [])


@pytest.mark.parametrize("name", PLUGINS)
def test_describe(wasm_bytes, name):
    d = describe(wasm_bytes, name)
    assert d["name"] == name
    assert d["kind"] in ("tool", "channel")
    assert isinstance(d["description"], str) and d["description"]
    assert isinstance(d["capabilities"], list)
    for t in d["tools"]:
        assert set(t) == {"name", "description", "input_schema"}
        assert t["input_schema"]["type"] == "object"
    p = plugin(wasm_bytes[name], functions=kv_functions({}) if name == "kv" else [])
    if d["kind"] == "tool":
        assert d["tools"], "a tool plugin offers tools"
        assert p.function_exists("handle_tool_call")
    else:
        assert p.function_exists("parse_incoming") and p.function_exists("format_outgoing")


def test_describe_details(wasm_bytes):
    d = {n: describe(wasm_bytes, n) for n in PLUGINS}
    assert [t["name"] for t in d["echo"]["tools"]] == ["echo"]  # an everyday tool: no test-only tools
    assert d["echo"]["capabilities"] == []
    assert {t["name"] for t in d["kv"]["tools"]} == {"remember", "recall", "forget"}
    assert d["kv"]["capabilities"] == ["store:kv"]
    assert [t["name"] for t in d["fetch"]["tools"]] == ["fetch"]
    assert d["fetch"]["capabilities"] == ["http:*"]
    assert d["mock"]["kind"] == d["telegram"]["kind"] == "channel"
    assert d["telegram"]["capabilities"] == ["http:api.telegram.org"]
    assert d["telegram"]["verify"] == {"header": "X-Telegram-Bot-Api-Secret-Token", "secret": "webhook_secret"}
    assert "verify" not in d["mock"]


def test_host_user_imports_only_where_used(wasm_bytes):
    for name in ("echo", "fetch", "mock", "telegram"):
        assert user_imports(wasm_bytes[name]) == set(), name
    assert user_imports(wasm_bytes["kv"]) == {"kv_get", "kv_set", "kv_delete"}
    imports, _ = wasm_sections(wasm_bytes["kv"])
    assert {m for m, _, _ in imports} == {"extism:host/env", USER_NS}
    assert all(kind == 0 for _, _, kind in imports)  # functions only
    # Kernel imports are pulled in only as needed too: echo makes no HTTP calls.
    echo_env = {n for m, n, _ in wasm_sections(wasm_bytes["echo"])[0]}
    assert "http_request" not in echo_env and "config_get" not in echo_env
    assert "http_request" in {n for m, n, _ in wasm_sections(wasm_bytes["fetch"])[0]}


def test_kv_without_host_functions_fails_to_load(wasm_bytes):
    with pytest.raises(extism.Error):
        plugin(wasm_bytes["kv"], functions=[])


def test_test_only_tools_live_in_the_test_module(wasm_bytes):
    d = call_json(wasm_bytes["testtools"], "describe", b"")
    assert {t["name"] for t in d["tools"]} == {
        "counter", "trap", "fail", "spin", "big", "bomb", "recurse", "whoami", "http"}
    shipped = {t["name"] for n in PLUGINS for t in describe(wasm_bytes, n)["tools"]}
    assert shipped.isdisjoint({t["name"] for t in d["tools"]})


# --------------------------------------------------------------------------
# echo, and the misbehaving tools of testtools
# --------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["hello", "", TRICKY, "x" * 70000])
def test_echo_round_trip(wasm_bytes, text):
    assert tool(wasm_bytes["echo"], "echo", {"text": text}) == {"content": text, "is_error": False}


def test_echo_accepts_raw_utf8_and_escaped_input(wasm_bytes):
    for ensure_ascii in (True, False):
        data = json.dumps({"name": "echo", "input": {"text": TRICKY}}, ensure_ascii=ensure_ascii).encode()
        out = json.loads(plugin(wasm_bytes["echo"]).call("handle_tool_call", data))
        assert out == {"content": TRICKY, "is_error": False}


def test_echo_bad_input(wasm_bytes):
    out = tool(wasm_bytes["echo"], "echo", {"txt": "x"})
    assert out["is_error"] is True and "text" in out["content"]
    with pytest.raises(extism.Error, match="unknown tool: nope"):
        tool(wasm_bytes["echo"], "nope", {})
    with pytest.raises(extism.Error, match="not valid JSON"):
        plugin(wasm_bytes["echo"]).call("handle_tool_call", b'{"name": "echo", "input": ')


def test_counter_is_fresh_per_instance(wasm_bytes):
    for _ in range(3):
        assert tool(wasm_bytes["testtools"], "counter", {}) == {"content": "1", "is_error": False}
    compiled = CompiledPlugin(wasm_bytes["testtools"], functions=[])
    for _ in range(2):
        p = extism.Plugin(compiled)
        assert json.loads(p.call("handle_tool_call", '{"name":"counter","input":{}}'))["content"] == "1"
    # (The same instance does keep its globals: the host must not reuse one.)
    assert json.loads(p.call("handle_tool_call", '{"name":"counter","input":{}}'))["content"] == "2"


def test_trap(wasm_bytes):
    with pytest.raises(extism.Error):
        tool(wasm_bytes["testtools"], "trap", {})


def test_fail_sets_error_message(wasm_bytes):
    with pytest.raises(extism.Error, match="deliberate failure"):
        tool(wasm_bytes["testtools"], "fail", {})


def test_spin_is_stopped_by_timeout(wasm_bytes):
    started = time.monotonic()
    with pytest.raises(extism.Error, match="timeout"):
        tool(wasm_bytes["testtools"], "spin", {}, timeout_ms=300)
    assert time.monotonic() - started < 5


def test_big_output(wasm_bytes):
    out = tool(wasm_bytes["testtools"], "big", {"n": 100_000})
    assert out == {"content": "x" * 100_000, "is_error": False}
    assert tool(wasm_bytes["testtools"], "big", {"n": 0})["content"] == ""


def test_big_beyond_memory_limit_fails(wasm_bytes):
    with pytest.raises(extism.Error):
        tool(wasm_bytes["testtools"], "big", {"n": 8 * 1024 * 1024}, memory={"max_pages": 32})


def test_recurse_overflows_the_stack_and_is_stopped(wasm_bytes):
    with pytest.raises(extism.Error, match="backtrace"):
        tool(wasm_bytes["testtools"], "recurse", {})


def test_whoami_returns_the_caller_verbatim(wasm_bytes):
    caller = {"agent": "a", "channel": "c", "account": TRICKY, "peer": "p", "person": "a:c:x"}
    out = tool(wasm_bytes["testtools"], "whoami", {}, caller=caller)
    assert json.loads(out["content"]) == caller
    assert tool(wasm_bytes["testtools"], "whoami", {})["content"] == "null"


def test_bomb_is_stopped_by_memory_limit(wasm_bytes):
    started = time.monotonic()
    with pytest.raises(extism.Error):
        tool(wasm_bytes["testtools"], "bomb", {}, memory={"max_pages": 64}, timeout_ms=5000)
    assert time.monotonic() - started < 5


# --------------------------------------------------------------------------
# kv
# --------------------------------------------------------------------------


ANN = {"agent": "a", "channel": "web", "account": "ann", "peer": "main", "person": "a:web:ann"}
BOB = {"agent": "a", "channel": "web", "account": "bob", "peer": "main", "person": "a:web:bob"}


def stored_key(caller: dict, key: str) -> str:
    return kv_stored_key(caller["person"], key)


def test_kv_persists_across_instances(wasm_bytes):
    store: dict[str, str] = {}
    errors: list = []
    fns = kv_functions(store, errors)
    wasm = wasm_bytes["kv"]
    assert tool(wasm, "remember", {"key": "colour", "value": TRICKY}, fns, ANN) == {"content": "ok", "is_error": False}
    assert store == {stored_key(ANN, "colour"): TRICKY}
    assert tool(wasm, "recall", {"key": "colour"}, fns, ANN) == {"content": TRICKY, "is_error": False}
    # a second, independent instance sharing the same store
    assert tool(wasm, "recall", {"key": "colour"}, kv_functions(store, errors), ANN) == {
        "content": TRICKY, "is_error": False}
    missing = tool(wasm, "recall", {"key": "shape"}, fns, ANN)
    assert missing["is_error"] is True and "shape" in missing["content"]
    assert tool(wasm, "forget", {"key": "colour"}, fns, ANN)["is_error"] is False
    assert store == {}
    assert tool(wasm, "recall", {"key": "colour"}, fns, ANN)["is_error"] is True
    assert errors == []


def test_kv_keeps_each_persons_memory_apart(wasm_bytes):
    store: dict[str, str] = {}
    fns = kv_functions(store)
    wasm = wasm_bytes["kv"]
    assert tool(wasm, "remember", {"key": "pin", "value": "1234"}, fns, ANN)["is_error"] is False
    assert tool(wasm, "remember", {"key": "pin", "value": "9999"}, fns, BOB)["is_error"] is False
    assert tool(wasm, "recall", {"key": "pin"}, fns, ANN)["content"] == "1234"
    assert tool(wasm, "recall", {"key": "pin"}, fns, BOB)["content"] == "9999"
    assert tool(wasm, "forget", {"key": "pin"}, fns, BOB)["is_error"] is False
    assert tool(wasm, "recall", {"key": "pin"}, fns, BOB)["is_error"] is True
    assert tool(wasm, "recall", {"key": "pin"}, fns, ANN)["content"] == "1234"
    # the same account through another agent is another person
    assert tool(wasm, "recall", {"key": "pin"}, fns, dict(ANN, agent="b", person="b:web:ann"))["is_error"] is True
    # without the caller the plugin refuses rather than share one memory
    with pytest.raises(extism.Error, match="who is calling"):
        tool(wasm, "recall", {"key": "pin"}, fns)


def test_kv_empty_value_and_limits(wasm_bytes):
    store: dict[str, str] = {}
    fns = kv_functions(store)
    wasm = wasm_bytes["kv"]
    # offset 0 means "absent" in the kv ABI, so empty values are refused
    assert tool(wasm, "remember", {"key": "e", "value": ""}, fns, ANN)["is_error"] is True
    assert store == {}
    store[stored_key(ANN, "e")] = ""  # a host returning "" as offset 0 reads as absent
    assert tool(wasm, "recall", {"key": "e"}, fns, ANN)["is_error"] is True
    assert tool(wasm, "remember", {"key": "k" * 221, "value": "v"}, fns, ANN)["is_error"] is True
    assert tool(wasm, "remember", {"key": "k" * 220, "value": "v"}, fns, ANN)["is_error"] is False
    assert len(stored_key(ANN, "k" * 220)) <= 256  # within the host's key limit
    assert tool(wasm, "remember", {"key": "big", "value": "v" * (64 * 1024 + 1)}, fns, ANN)["is_error"] is True
    assert tool(wasm, "remember", {"key": "big", "value": "v" * (64 * 1024)}, fns, ANN)["is_error"] is False
    assert tool(wasm, "remember", {"value": "v"}, fns, ANN)["is_error"] is True
    assert set(store) == {stored_key(ANN, k) for k in ("e", "k" * 220, "big")}
    assert len(store[stored_key(ANN, "big")]) == 64 * 1024


# --------------------------------------------------------------------------
# fetch
# --------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        if self.path == "/hello":
            body, status = b"hello from loopback", 200
        elif self.path == "/large":
            body, status = ("\u00e9" * 5000).encode(), 200  # 10000 bytes of 2-byte chars
        else:
            body, status = b"no such page", 404
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_fetch_allowed_host(wasm_bytes, http_server):
    out = tool(wasm_bytes["fetch"], "fetch", {"url": http_server + "/hello"},
               allowed_hosts=["127.0.0.1"], timeout_ms=10_000)
    assert out == {"content": "hello from loopback", "is_error": False}


def test_fetch_truncates_to_4k_on_a_character_boundary(wasm_bytes, http_server):
    out = tool(wasm_bytes["fetch"], "fetch", {"url": http_server + "/large"},
               allowed_hosts=["127.0.0.1"], timeout_ms=10_000)
    assert out["is_error"] is False
    assert out["content"] == "\u00e9" * 2048
    assert len(out["content"].encode()) == 4096


def test_fetch_http_error_status(wasm_bytes, http_server):
    out = tool(wasm_bytes["fetch"], "fetch", {"url": http_server + "/missing"},
               allowed_hosts=["127.0.0.1"], timeout_ms=10_000)
    assert out["is_error"] is True
    assert "404" in out["content"] and "no such page" in out["content"]


def test_fetch_denied_host(wasm_bytes, http_server):
    # (Extism reports a trap with a wasm backtrace; the kernel's "not allowed"
    # reason is not in the message.)
    with pytest.raises(extism.Error):
        tool(wasm_bytes["fetch"], "fetch", {"url": http_server + "/hello"},
             allowed_hosts=["example.org"], timeout_ms=10_000)
    with pytest.raises(extism.Error):
        tool(wasm_bytes["fetch"], "fetch", {"url": http_server + "/hello"}, timeout_ms=10_000)


def test_fetch_rejects_non_http_url(wasm_bytes):
    out = tool(wasm_bytes["fetch"], "fetch", {"url": "file:///etc/passwd"}, allowed_hosts=["*"])
    assert out["is_error"] is True


# --------------------------------------------------------------------------
# mock channel
# --------------------------------------------------------------------------


def incoming(wasm: bytes, body: Any, headers: dict | None = None, **manifest: Any) -> dict:
    raw = body if isinstance(body, str) else json.dumps(body)
    return call_json(wasm, "parse_incoming", {"headers": headers or {}, "body": raw}, **manifest)


def outgoing(wasm: bytes, reply_to: dict, content: str, **manifest: Any) -> dict:
    return call_json(wasm, "format_outgoing", {"reply_to": reply_to, "content": content}, **manifest)


def test_mock_parse_incoming(wasm_bytes):
    msg = incoming(wasm_bytes["mock"], {"user": "alice", "chat": "room-1", "text": TRICKY, "id": "m1"},
                   {"content-type": "application/json"})
    assert msg == {
        "channel": "mock", "account": "alice", "peer": "room-1", "content": TRICKY,
        "message_id": "m1", "reply_to": {"chat": "room-1"},
    }


def test_mock_peer_defaults_to_main(wasm_bytes):
    msg = incoming(wasm_bytes["mock"], {"user": "bob", "text": "hi", "id": "2"})
    assert msg["peer"] == "main" and msg["reply_to"] == {"chat": "main"}
    assert msg["account"] == "bob" and msg["content"] == "hi"


def test_mock_rejects_bad_payloads(wasm_bytes):
    wasm = wasm_bytes["mock"]
    with pytest.raises(extism.Error, match="missing field: user"):
        incoming(wasm, {"chat": "c", "text": "hi", "id": "1"})
    with pytest.raises(extism.Error, match="missing field: text"):
        incoming(wasm, {"user": "u", "chat": "c", "id": "1"})
    with pytest.raises(extism.Error, match="user"):
        incoming(wasm, {"user": 42, "text": "hi"})
    with pytest.raises(extism.Error, match="JSON"):
        incoming(wasm, "this is not json")
    with pytest.raises(extism.Error):
        incoming(wasm, "[1, 2]")


def test_mock_format_outgoing(wasm_bytes):
    req = outgoing(wasm_bytes["mock"], {"chat": "room-1"}, TRICKY, config={"reply_url": "http://127.0.0.1:9/reply"})
    assert req == {
        "method": "POST", "url": "http://127.0.0.1:9/reply",
        "headers": {"content-type": "application/json"},
        "body": {"chat": "room-1", "text": TRICKY},
    }


def test_mock_format_outgoing_needs_reply_url(wasm_bytes):
    with pytest.raises(extism.Error, match="reply_url"):
        outgoing(wasm_bytes["mock"], {"chat": "c"}, "hi")


# --------------------------------------------------------------------------
# telegram channel
# --------------------------------------------------------------------------


def update(text: str | None = TRICKY, chat_id: int = -1001234567890, from_id: int = 123456789, update_id: int = 918273645) -> dict:
    message: dict[str, Any] = {
        "message_id": 77, "date": 1700000000,
        "from": {"id": from_id, "is_bot": False, "first_name": "Ann \"A\"", "language_code": "en"},
        "chat": {"id": chat_id, "type": "supergroup", "title": "Group"},
    }
    if text is not None:
        message["text"] = text
        message["entities"] = [{"offset": 0, "length": 2, "type": "bold"}]
    else:
        message["sticker"] = {"file_id": "abc", "width": 512, "height": 512}
    return {"update_id": update_id, "message": message}


def test_telegram_parse_incoming(wasm_bytes):
    msg = incoming(wasm_bytes["telegram"], update())
    assert msg == {
        "channel": "telegram", "account": "123456789", "peer": "-1001234567890", "content": TRICKY,
        "message_id": "918273645", "reply_to": {"chat_id": -1001234567890},
    }


@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_telegram_escapes_and_big_ids(wasm_bytes, ensure_ascii):
    big = -(2**62) - 12345  # beyond a double's exact range: must be copied, not converted
    body = json.dumps(update(chat_id=big, from_id=2**53 + 1, update_id=2**40 + 7), ensure_ascii=ensure_ascii)
    msg = incoming(wasm_bytes["telegram"], body)
    assert msg["peer"] == str(big) and msg["reply_to"] == {"chat_id": big}
    assert msg["account"] == str(2**53 + 1) and msg["message_id"] == str(2**40 + 7)
    assert msg["content"] == TRICKY


def test_telegram_ignores_updates_without_text(wasm_bytes):
    wasm = wasm_bytes["telegram"]
    assert incoming(wasm, update(text=None)) == {"ignore": True}
    assert incoming(wasm, {"update_id": 5, "edited_message": update()["message"]}) == {"ignore": True}
    assert incoming(wasm, {"update_id": 6, "callback_query": {"id": "1", "data": "x"}}) == {"ignore": True}
    assert incoming(wasm, {"update_id": 7, "message": {"chat": {"id": 1}, "text": None}}) == {"ignore": True}


def test_telegram_rejects_bad_payloads(wasm_bytes):
    wasm = wasm_bytes["telegram"]
    with pytest.raises(extism.Error, match="JSON"):
        incoming(wasm, "<html>not json</html>")
    with pytest.raises(extism.Error, match="update_id"):
        incoming(wasm, {"message": update()["message"]})
    with pytest.raises(extism.Error, match="chat"):
        incoming(wasm, {"update_id": 1, "message": {"text": "hi"}})


def test_telegram_format_outgoing(wasm_bytes):
    req = outgoing(wasm_bytes["telegram"], {"chat_id": -1001234567890}, TRICKY)
    assert req == {
        "method": "POST", "url": "https://api.telegram.org/bot{{secret:bot_token}}/sendMessage",
        "headers": {"content-type": "application/json"},
        "body": {"chat_id": -1001234567890, "text": TRICKY},
    }


def test_telegram_format_outgoing_api_base_and_big_id(wasm_bytes):
    big = -(2**62) - 12345
    req = outgoing(wasm_bytes["telegram"], {"chat_id": big}, "hi", config={"api_base": "http://127.0.0.1:8081/"})
    assert req["url"] == "http://127.0.0.1:8081/bot{{secret:bot_token}}/sendMessage"
    assert req["body"] == {"chat_id": big, "text": "hi"}


def test_telegram_round_trip(wasm_bytes):
    """What parse_incoming puts in reply_to is what format_outgoing needs."""
    wasm = wasm_bytes["telegram"]
    msg = incoming(wasm, update(chat_id=-42))
    req = outgoing(wasm, msg["reply_to"], msg["content"])
    assert req["body"] == {"chat_id": -42, "text": TRICKY}


def test_telegram_format_outgoing_needs_chat_id(wasm_bytes):
    with pytest.raises(extism.Error, match="chat_id"):
        outgoing(wasm_bytes["telegram"], {}, "hi")


def test_build_outputs_are_files(wasm_build):
    for name in PLUGINS:
        assert Path(wasm_build[name]).stat().st_size > 0


# --------------------------------------------------------------------------
# JSON helper edge cases (through echo)
# --------------------------------------------------------------------------


def test_json_strings_fuzz(wasm_bytes):
    import random

    rng = random.Random(1234)
    alphabet = ['"', "\\", "/", "\n", "\r", "\t", "\b", "\f", "\x00", "\x1f", "\x7f", "a", " ", "\u00e9",
                "\u07ff", "\u0800", "\ufeff", "\uffff", "\U00010000", "\U0001F600", "\U0010FFFF", "{", "}", ","]
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(40)]
    p_input = [json.dumps({"name": "echo", "input": {"text": t}}, ensure_ascii=bool(i % 2)) for i, t in enumerate(texts)]
    for text, data in zip(texts, p_input):
        out = json.loads(plugin(wasm_bytes["echo"]).call("handle_tool_call", data))
        assert out == {"content": text, "is_error": False}


def test_json_lone_surrogates_and_invalid_utf8_become_replacement_chars(wasm_bytes):
    data = b'{"name":"echo","input":{"text":"a\\ud800b\\udc00c\\ud83d\\ude00"}}'
    out = json.loads(plugin(wasm_bytes["echo"]).call("handle_tool_call", data))
    assert out["content"] == "a\ufffdb\ufffdc\U0001F600"
    raw = b'{"name":"echo","input":{"text":"x\xff\xc3(y\xed\xa0\x80z"}}'
    out_bytes = bytes(plugin(wasm_bytes["echo"]).call("handle_tool_call", raw))
    out_bytes.decode("utf-8")  # always valid UTF-8 JSON
    assert json.loads(out_bytes)["content"] == "x\ufffd\ufffd(y\ufffd\ufffd\ufffdz"


def test_json_key_lookup_is_exact(wasm_bytes):
    # nested "text" keys and escaped key names
    data = json.dumps({"input": {"nested": {"text": "no"}, "t\u0065xt": "yes"}, "name": "echo"}, ensure_ascii=True)
    out = json.loads(plugin(wasm_bytes["echo"]).call("handle_tool_call", data.replace('"text"', '"te\\u0078t"')))
    assert out == {"content": "yes", "is_error": False}
    # a key that only appears inside a string value is not a key
    data = '{"name":"echo","input":{"note":"\\"text\\": \\"no\\"","text":"ok"}}'
    assert json.loads(plugin(wasm_bytes["echo"]).call("handle_tool_call", data))["content"] == "ok"


@pytest.mark.parametrize("bad", [b"", b"{", b'{"name":"echo",}', b'{"name":"echo" "input":{}}', b"[" * 500 + b"]" * 500,
                                 b'{"name":"echo","input":{"text":"a\x01"}}', b'{"name":"echo","input":{"text":"\\x"}}'])
def test_json_invalid_input_is_an_error(wasm_bytes, bad):
    with pytest.raises(extism.Error):
        plugin(wasm_bytes["echo"]).call("handle_tool_call", bad)
