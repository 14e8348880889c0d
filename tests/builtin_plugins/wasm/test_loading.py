"""Loading WASM plugins at start-up: what is refused, why, and that the gateway starts anyway."""

from __future__ import annotations

import hashlib
import logging
import random

from builtin_plugins.wasm.settings import WasmPluginConfig
from tests.harness import make_settings, running_gateway


def cfg(name: str, path, **kw) -> WasmPluginConfig:
    return WasmPluginConfig(name=name, path=str(path), **kw)


def rejected_lines(caplog, name: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.ERROR and "event=wasm_plugin_rejected" in r.getMessage()
            and f"plugin={name} " in r.getMessage()]


async def test_bad_plugins_are_refused_and_the_gateway_starts(wasm_build, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="exoclaw.wasm")
    echo = wasm_build["echo"].read_bytes()
    truncated = tmp_path / "truncated.wasm"
    truncated.write_bytes(echo[: len(echo) // 2])
    noise = tmp_path / "noise.wasm"
    noise.write_bytes(random.Random(7).randbytes(4096))
    notwasm = tmp_path / "empty.wasm"
    notwasm.write_bytes(b"")
    good_sha = hashlib.sha256(echo).hexdigest()
    configs = (
        cfg("echo", wasm_build["echo"], sha256=good_sha),  # the right pin loads
        cfg("kv", wasm_build["kv"]),  # imports kv_* without store: grant
        cfg("truncated", truncated),
        cfg("noise", noise),
        cfg("empty", notwasm),
        cfg("pinned", wasm_build["echo"], sha256="0" * 64),
        cfg("tiny", wasm_build["echo"], memory_max_pages=1),
        cfg("missing", tmp_path / "nowhere.wasm"),
    )
    async with running_gateway(make_settings(data_dir=tmp_path, plugins=configs)) as gw:
        async with gw.client() as c:
            assert (await c.request("ping"))["result"] == "pong"
            listed = (await c.request("plugin.list"))["result"]
            assert [p["name"] for p in listed] == ["echo"]
            assert (await c.request("status"))["result"]["plugins"] == 1
            frames = await c.chat({"channel": "t", "account": "a", "content": '/tool echo {"text": "up"}'})
            assert any(f.get("event") == "tool_result" and f["data"]["content"] == "up" for f in frames)

        report = {p["name"]: p for p in gw.rt.plugin_report()}
        assert list(report) == [c.name for c in configs]  # every configured plugin, in order
        assert report["echo"]["loaded"] is True and report["echo"]["reason"] == ""
        for name in ("kv", "truncated", "noise", "empty", "pinned", "tiny", "missing"):
            assert report[name]["loaded"] is False, name
            assert report[name]["tools"] == [] and report[name]["reason"], name
        assert report["kv"]["reason"].startswith("imports a host function it was not granted: extism:host/user::kv_")
        assert "store:NAME" in report["kv"]["reason"]
        assert report["truncated"]["reason"].startswith("not a valid WebAssembly module: ")
        assert report["noise"]["reason"].startswith("not a valid WebAssembly module: ")
        assert report["empty"]["reason"].startswith("not a valid WebAssembly module")
        assert report["pinned"]["reason"] == f"sha256 mismatch: the config pins {'0' * 64}, the file is {good_sha}"
        assert report["tiny"]["reason"] == "memory_max_pages=1 is below what the module needs (17 pages) (oom)"
        assert report["missing"]["reason"] == f"file not found: {tmp_path / 'nowhere.wasm'}"
        assert report["missing"]["path"] == str(tmp_path / "nowhere.wasm")

    # one ERROR line per refused plugin, a WARNING (not an error) for the missing file
    for name in ("kv", "truncated", "noise", "empty", "pinned", "tiny"):
        lines = rejected_lines(caplog, name)
        assert len(lines) == 1, (name, lines)
        assert "\n" not in lines[0]
    assert rejected_lines(caplog, "missing") == []
    missing = [r for r in caplog.records if "event=wasm_plugin_missing" in r.getMessage()]
    assert len(missing) == 1 and missing[0].levelno == logging.WARNING
    loaded = [r.getMessage() for r in caplog.records if "event=wasm_plugin_loaded" in r.getMessage()]
    assert len(loaded) == 1 and "plugin=echo kind=tool" in loaded[0] and "compile_ms=" in loaded[0]


async def test_memory_max_pages_at_the_modules_size_loads(wasm_build, tmp_path):
    configs = (cfg("e17", wasm_build["echo"], memory_max_pages=17), cfg("e16", wasm_build["echo"], memory_max_pages=16))
    async with running_gateway(make_settings(data_dir=tmp_path, plugins=configs)) as gw:
        report = {p["name"]: p for p in gw.rt.plugin_report()}
        assert report["e17"]["loaded"] is True
        assert report["e16"]["loaded"] is False and "(17 pages)" in report["e16"]["reason"]


async def test_second_plugin_with_the_same_tool_name_is_refused_that_tool(wasm_build, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="exoclaw.wasm")
    configs = (cfg("first", wasm_build["testtools"]), cfg("second", wasm_build["testtools"], timeout_ms=5))
    async with running_gateway(make_settings(data_dir=tmp_path, plugins=configs)) as gw:
        report = {p["name"]: p for p in gw.rt.plugin_report()}
        assert "spin" in report["first"]["tools"]
        assert report["second"]["tools"] == [] and report["second"]["loaded"] is True
        refused = [r.getMessage() for r in caplog.records if "event=wasm_tool_refused" in r.getMessage()]
        assert len(refused) == len(report["first"]["tools"]) == 9
        assert all("plugin=second" in line for line in refused)
        assert any("tool=spin" in line and "plugin first already provides tool spin" in line for line in refused)
        wasm = gw.rt.pm.get_plugin("wasm")
        assert [t.name for t in wasm.list_tools(gw.rt.settings.agents["default"])].count("spin") == 1


async def test_describe_problems_are_refused(wasm_build, tmp_path):
    """A module without ``describe`` or without the export its kind needs, or a bad describe."""
    # WAT text is accepted by Extism's compiler: handy to make small odd modules.
    def wat(body: str) -> str:
        return f"""(module
          (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
          (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
          (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
          (memory (export "memory") 1)
          {body})"""

    def describe_returning(text: str, extra: str = "") -> str:
        data = text.encode()
        stores = "".join(
            f"(call $store_u8 (i64.add (local.get $o) (i64.const {i})) (i32.const {b}))" for i, b in enumerate(data)
        )
        return wat(f"""
          (func (export "describe") (result i32) (local $o i64)
            (local.set $o (call $alloc (i64.const {len(data)})))
            {stores}
            (call $output_set (local.get $o) (i64.const {len(data)}))
            (i32.const 0))
          {extra}""")

    handle = '(func (export "handle_tool_call") (result i32) (i32.const 0))'
    tool = '{"kind":"tool","tools":[{"name":"x","description":"d","input_schema":{"type":"object"}}]}'
    cases = {
        "nodescribe": (wat(handle), "missing export: describe"),
        "nohandle": (describe_returning(tool), "a tool plugin must export handle_tool_call (missing export)"),
        "notjson": (describe_returning("hello", handle), "describe did not return valid JSON"),
        "array": (describe_returning("[1]", handle), "describe must return a JSON object, not list"),
        "badkind": (describe_returning('{"kind":"gadget","tools":[]}', handle), 'describe: kind must be "tool" or "channel"'),
        "notools": (describe_returning('{"kind":"tool","tools":[]}', handle), "describe: a tool plugin must list at least one tool"),
        "badtool": (describe_returning('{"kind":"tool","tools":[{"description":"d"}]}', handle), "describe: tools[0].name"),
        "nochannel": (describe_returning('{"kind":"channel","tools":[]}', handle), "a channel plugin must export parse_incoming, format_outgoing"),
        "good": (describe_returning(tool, handle), ""),
    }
    configs = []
    for name, (text, _) in cases.items():
        path = tmp_path / f"{name}.wat"
        path.write_text(text)
        configs.append(cfg(name, path))
    async with running_gateway(make_settings(data_dir=tmp_path, plugins=tuple(configs))) as gw:
        report = {p["name"]: p for p in gw.rt.plugin_report()}
    for name, (_, reason) in cases.items():
        if not reason:
            assert report[name]["loaded"] is True and report[name]["tools"] == ["x"], report[name]
        else:
            assert report[name]["loaded"] is False, name
            assert report[name]["reason"].startswith(reason), (name, report[name]["reason"])


async def test_channels_are_loaded_but_offer_no_tools(wasm_build, tmp_path):
    configs = (
        cfg("mock", wasm_build["mock"]),
        cfg("telegram", wasm_build["telegram"], capabilities=("http:api.telegram.org", "store:tg")),
    )
    async with running_gateway(make_settings(data_dir=tmp_path, plugins=configs)) as gw:
        async with gw.client() as c:
            listed = (await c.request("plugin.list"))["result"]
        assert listed == [
            {"name": "mock", "kind": "channel", "tools": [], "capabilities": []},
            {"name": "telegram", "kind": "channel", "tools": [], "capabilities": ["http:api.telegram.org", "store:tg"]},
        ]
        assert gw.rt.pm.get_plugin("wasm").list_tools(gw.rt.settings.agents["default"]) == []
        report = {p["name"]: p for p in gw.rt.plugin_report()}
        assert report["telegram"]["not_granted"] == []


def test_exoclaw_plugins_cli_shows_reasons(wasm_build, tmp_path, monkeypatch, capsys):
    """``exoclaw plugins`` lists every configured plugin with its status and what it was not granted."""
    from exoclaw_core.cli.main import main

    config = tmp_path / "config.toml"
    config.write_text(f"""
[[plugins]]
name = "echo"
path = "{wasm_build['echo']}"

[[plugins]]
name = "kv"
path = "{wasm_build['kv']}"

[[plugins]]
name = "fetch"
path = "{wasm_build['fetch']}"
capabilities = ["http:127.0.0.1"]

[[plugins]]
name = "gone"
path = "gone.wasm"
""")
    monkeypatch.setenv("EXOCLAW_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert main(["plugins", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "tools: echo\n" in out
    assert "NOT LOADED — imports a host function it was not granted: extism:host/user::kv_" in out
    assert "asked for but not granted: http:*" in out
    assert "capabilities: http:127.0.0.1" in out
    assert f"NOT LOADED — file not found: {tmp_path / 'gone.wasm'}" in out  # relative to the config file
