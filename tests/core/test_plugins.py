"""The plugin manager: real entry points, disable/load, isolation, sync and async hooks."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from exoclaw_core import hookcall
from exoclaw_core.plugins import make_plugin_manager
from exoclaw_hooks import ConfigError, hookimpl
from exoclaw_core.config import HooksConfig, Settings

BUILTINS = {
    "router", "metering", "memory-soul", "memory-semantic", "memory-episodic",
    "wasm", "provider-anthropic", "provider-openai", "provider-echo",
}


@pytest.fixture
def third_party(tmp_path, monkeypatch):
    """A third-party distribution made visible through a real *.dist-info on sys.path."""
    site = tmp_path / "site"
    pkg = site / "acme_audit"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent('''
        from exoclaw_hooks import hookimpl
        CALLS = []

        @hookimpl
        def after_turn(turn):
            CALLS.append(turn)

        @hookimpl
        def status_info(host):
            return {"acme": "audited"}
    '''))
    (site / "acme_broken.py").write_text("raise ImportError('acme_broken cannot import')\n")
    dist = site / "acme_audit-1.2.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-audit\nVersion: 1.2.3\n")
    (dist / "entry_points.txt").write_text("[exoclaw]\nacme = acme_audit\nacme-broken = acme_broken\n")
    monkeypatch.syspath_prepend(str(site))
    yield site
    for mod in ("acme_audit", "acme_broken"):
        sys.modules.pop(mod, None)


def test_builtins_and_third_party_are_registered_through_entry_points(third_party):
    pm = make_plugin_manager(Settings())
    records = {r.name: r for r in pm.records}
    assert BUILTINS <= set(records)
    assert records["router"].source == "builtin"
    assert records["acme"].status == "loaded" and records["acme"].source == "acme-audit 1.2.3"
    broken = records["acme-broken"]
    assert broken.status == "failed" and "acme_broken cannot import" in broken.reason
    assert pm.get_plugin("acme") is not None


def test_disable_builtin_and_third_party(third_party):
    settings = Settings(hooks=HooksConfig(disable=("router", "acme")))
    pm = make_plugin_manager(settings)
    records = {r.name: r for r in pm.records}
    assert records["router"].status == "disabled" and records["acme"].status == "disabled"
    assert pm.get_plugin("router") is None and pm.get_plugin("acme") is None


def test_disable_unknown_is_a_config_error():
    with pytest.raises(ConfigError) as err:
        make_plugin_manager(Settings(hooks=HooksConfig(disable=("nope",))))
    assert 'disable: unknown plugin "nope"' in err.value.problems[0]


def test_hooks_load_registers_a_module_and_isolates_a_broken_one(third_party):
    settings = Settings(hooks=HooksConfig(load=("acme_audit", "does.not.exist")))
    pm = make_plugin_manager(settings, load_entrypoints=False)
    records = {r.name: r for r in pm.records}
    assert records["acme_audit"].status == "loaded" and records["acme_audit"].source == "[hooks] load"
    assert records["does.not.exist"].status == "failed"


class SyncAndAsync:
    @hookimpl
    def status_info(self, host):
        return {"sync": True}


class AsyncOne:
    @hookimpl
    async def status_info(self, host):
        return {"async": True}


class Raises:
    @hookimpl
    def status_info(self, host):
        raise RuntimeError("boom")


async def test_sync_and_async_implementations_both_work_and_failures_are_isolated(caplog):
    pm = make_plugin_manager(
        Settings(), load_entrypoints=False,
        plugins=[("s", SyncAndAsync()), ("a", AsyncOne()), ("r", Raises())],
    )
    results = await hookcall.call_all(pm, "status_info", host=None)
    assert {"sync": True} in results and {"async": True} in results
    assert "plugin=r hook=status_info" in caplog.text and "boom" in caplog.text


class AsyncDecision:
    @hookimpl
    async def dispatch_tool(self, call, context):
        return None


class Misspelled:
    @hookimpl
    def after_trun(self, turn):
        pass


def test_async_decision_hooks_and_unknown_hooks_are_refused_at_load():
    pm = make_plugin_manager(
        Settings(), load_entrypoints=False, plugins=[("ad", AsyncDecision()), ("ms", Misspelled())]
    )
    records = {r.name: r for r in pm.records}
    assert records["ad"].status == "failed" and "must be a plain function" in records["ad"].reason
    assert records["ms"].status == "failed" and "unknown hook after_trun" in records["ms"].reason


class Decides:
    def __init__(self, answer):
        self.answer = answer

    @hookimpl
    def resolve_route(self, message, agents, default_agent):
        if self.answer is None:
            return None

        async def later():
            return self.answer

        return later()


async def test_decision_hook_first_non_none_wins_and_may_return_an_awaitable():
    pm = make_plugin_manager(
        Settings(), load_entrypoints=False, plugins=[("first", Decides("A")), ("pass", Decides(None))]
    )
    assert await hookcall.call_first(pm, "resolve_route", message=None, agents={}, default_agent="") == "A"


def test_exoclaw_hooks_imports_only_pluggy_and_the_standard_library():
    code = (
        "import sys, exoclaw_hooks, exoclaw_hooks.testing\n"
        "bad = [m for m in ('aiohttp', 'extism', 'marshmallow', 'exoclaw_core', 'builtin_plugins', 'prometheus_client')"
        " if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_every_hook_is_documented():
    from exoclaw_hooks import _specs

    pm = make_plugin_manager(Settings(), load_entrypoints=False)
    for name in pm.hook.__dict__:
        spec = getattr(_specs, name, None)
        assert spec is not None and spec.__doc__ and len(spec.__doc__) > 40, name


def test_layering_core_never_imports_builtins_and_builtins_never_import_core():
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]

    def imports(package: str) -> set[tuple[str, str]]:
        found = set()
        for path in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    found |= {(str(path), a.name) for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    found.add((str(path), node.module))
        return found

    assert not [i for i in imports("exoclaw_core") if i[1].split(".")[0] == "builtin_plugins"]
    assert not [i for i in imports("builtin_plugins") if i[1].split(".")[0] == "exoclaw_core"]
    # the standard library and pluggy; marshmallow only in exoclaw_hooks.config (plugins' settings schemas),
    # and the testing kit may use what a plugin's tests run on (aiohttp, pytest, a real gateway)
    allowed = set(sys.stdlib_module_names) | {"pluggy"}
    hooks = {
        (str(Path(f).relative_to(root / "exoclaw_hooks")), m.split(".")[0])
        for f, m in imports("exoclaw_hooks") if m.split(".")[0] not in allowed
    }
    assert {(f, m) for f, m in hooks if not f.startswith("testing/")} <= {("config.py", "marshmallow")}, hooks
    assert {m for f, m in hooks if f.startswith("testing/")} <= {"aiohttp", "pytest", "exoclaw_core"}, hooks
