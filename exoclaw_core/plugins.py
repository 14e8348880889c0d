"""The plugin manager: entry points, ``[hooks] disable``/``load``, load-time checks.

A plugin that fails to import, that implements an unknown hook, or that
makes a decision hook ``async def`` is logged with its name and left out;
start-up goes on. Naming an unknown plugin in ``[hooks] disable`` is a
config error (it is almost always a typo).
"""

from __future__ import annotations

import importlib
import inspect
import logging
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable, Iterable, Mapping

import pluggy

from exoclaw_hooks import ConfigError, ProviderInfo
from exoclaw_hooks import _specs
from exoclaw_hooks._config import provider_register
from exoclaw_hooks._specs import DECISION_HOOKS, PIPELINE_HOOKS, PROJECT

from . import hookcall
from .config import plugin_tables
from .config.schema import CORE_TABLES
from .config.types import Settings
from .hookcall import guard

log = logging.getLogger("exoclaw.plugins")

BUILTIN_DIST = "exoclaw-runtime"


@dataclass
class PluginRecord:
    name: str
    source: str  # "builtin", "<dist> <version>", "[hooks] load", "test"
    status: str  # "loaded", "disabled", "failed"
    reason: str = ""


class ExoclawPluginManager(pluggy.PluginManager):
    """A pluggy manager that also remembers where each plugin came from."""

    def __init__(self) -> None:
        super().__init__(PROJECT)
        self.add_hookspecs(_specs)
        self.records: list[PluginRecord] = []
        #: the settings whose plugin tables were applied (``configure`` runs once per settings)
        self.configured: Any = None
        #: each plugin table as its owner received it (``exoclaw config check`` counts them)
        self.sections: dict[str, Any] = {}

    def loaded_names(self) -> list[str]:
        return [r.name for r in self.records if r.status == "loaded"]

    def add(self, obj: Any, name: str, source: str) -> bool:
        """Register ``obj`` (a module, an instance, or a class to instantiate) after checking it."""
        try:
            if inspect.isclass(obj):
                obj = obj()
            problem = _check_plugin(self, obj)
            if problem:
                raise ValueError(problem)
            self.register(obj, name=name)
            unknown = [
                h.name
                for h in self.get_hookcallers(obj) or []
                if not h.has_spec()
            ]
            if unknown:
                self.unregister(obj)
                raise ValueError(f"implements unknown hook {', '.join(sorted(unknown))}")
            self._guard(obj, name)
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop start-up
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())
            log.error("event=plugin_rejected plugin=%s source=%s reason=%s", name, source, reason)
            self.records.append(PluginRecord(name, source, "failed", reason))
            return False
        self.records.append(PluginRecord(name, source, "loaded"))
        return True

    def _guard(self, obj: Any, name: str) -> None:
        """Wrap each implementation of ``obj`` for its hook's kind (isolation, async; see ``hookcall``)."""
        for caller in self.get_hookcallers(obj) or []:
            for impl in caller.get_hookimpls():
                if impl.plugin is obj and not (impl.wrapper or impl.hookwrapper):
                    impl.function = guard(caller.name, name, impl.function)

    def mark_failed(self, name: str, reason: str) -> None:
        """A loaded plugin turned out broken (its settings hook raised): leave it out, say why."""
        plugin = self.get_plugin(name)
        if plugin is not None:
            self.unregister(plugin)
        for record in self.records:
            if record.name == name:
                record.status, record.reason = "failed", reason

    def source_of(self, name: str) -> str:
        return next((r.source for r in self.records if r.name == name), "?")


def _check_plugin(pm: pluggy.PluginManager, obj: Any) -> str | None:
    """Refuse ``async def`` decision hooks (their coroutine is never ``None``) and wrappers of a pipeline."""
    for attr in dir(obj):
        fn = getattr(obj, attr, None)
        if fn is None or not callable(fn):
            continue
        opts = pm.parse_hookimpl_opts(obj, attr)
        if opts is None:
            continue
        hook_name = opts.get("specname") or attr
        if hook_name in DECISION_HOOKS and inspect.iscoroutinefunction(fn):
            return f"decision hook {hook_name} must be a plain function returning an awaitable, not async def"
        if hook_name in PIPELINE_HOOKS and (opts.get("wrapper") or opts.get("hookwrapper")):
            return f"{hook_name} is a pipeline (each implementation sees the previous one's request): it cannot be wrapped"
    return None


def _entry_points() -> list[metadata.EntryPoint]:
    return sorted(metadata.entry_points(group=PROJECT), key=lambda ep: ep.name)


def _source_of(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "entry point"
    name = dist.metadata["Name"] if dist.metadata else "?"
    if name == BUILTIN_DIST:
        return "builtin"
    return f"{name} {dist.version}"


def make_plugin_manager(
    settings: Settings,
    *,
    load_entrypoints: bool = True,
    plugins: Iterable[tuple[str, Any]] = (),
) -> ExoclawPluginManager:
    """Build the plugin manager for one gateway (or one CLI command).

    :param load_entrypoints: load the ``exoclaw`` entry-point group (builtins
        and installed third-party plugins). Tests pass ``False`` and give
        ``plugins`` explicitly.
    :param plugins: extra ``(name, module_or_object)`` pairs to register.
    :raises ConfigError: ``[hooks] disable`` names a plugin that does not exist.
    """
    pm = ExoclawPluginManager()
    disable = set(settings.hooks.disable)
    known: set[str] = set()

    plugins = list(plugins)
    # an installed plugin also given as an object (a plugin's own tests) runs once: the given one
    given = {obj if inspect.isclass(obj) or inspect.ismodule(obj) else type(obj) for _, obj in plugins}
    if load_entrypoints:
        seen: set[str] = set()
        for ep in _entry_points():
            if ep.name in seen:  # the same distribution seen twice on sys.path
                continue
            seen.add(ep.name)
            known.add(ep.name)
            source = _source_of(ep)
            if ep.name in disable:
                pm.records.append(PluginRecord(ep.name, source, "disabled"))
                continue
            try:
                obj = ep.load()
            except Exception as exc:  # noqa: BLE001
                reason = " ".join(f"{type(exc).__name__}: {exc}".split())
                log.error("event=plugin_import_failed plugin=%s source=%s reason=%s", ep.name, source, reason)
                pm.records.append(PluginRecord(ep.name, source, "failed", reason))
                continue
            if obj in given:
                pm.records.append(PluginRecord(ep.name, source, "disabled", "given to the test harness instead"))
                continue
            pm.add(obj, ep.name, source)

    for name, obj in plugins:
        known.add(name)
        if name in disable:
            pm.records.append(PluginRecord(name, "given", "disabled"))
            continue
        pm.add(obj, name, "given")

    for modname in settings.hooks.load:
        known.add(modname)
        if modname in disable:
            pm.records.append(PluginRecord(modname, "[hooks] load", "disabled"))
            continue
        try:  # "module" or "module:attribute" (a plugin class or object), as in an entry point
            path, _, attr = modname.partition(":")
            module: Any = importlib.import_module(path)
            if attr:
                module = getattr(module, attr)
        except Exception as exc:  # noqa: BLE001
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())
            log.error("event=plugin_import_failed plugin=%s source=[hooks]load reason=%s", modname, reason)
            pm.records.append(PluginRecord(modname, "[hooks] load", "failed", reason))
            continue
        pm.add(module, modname, "[hooks] load")

    unknown = sorted(disable - known)
    if unknown:
        names = ", ".join(sorted(known)) or "none"
        raise ConfigError(
            [
                f"{_label(settings)}: [hooks] disable: unknown plugin \"{u}\" (known: {names})"
                for u in unknown
            ]
        )
    return pm


def _label(settings: Settings) -> str:
    return settings.label


def collect_providers(pm: ExoclawPluginManager, host: Any = None) -> dict[str, ProviderInfo]:
    """The providers the loaded plugins register (``host`` ``None``: no provider is built)."""
    infos: dict[str, ProviderInfo] = {}
    hookcall.call_sync(pm, "register_providers", register=provider_register(infos), host=host)
    return infos


def collect_stores(pm: ExoclawPluginManager) -> dict[str, Callable[..., Any]]:
    """The store factories the loaded plugins register, by URL scheme (lowercase)."""
    factories: dict[str, Callable[..., Any]] = {}

    def register(scheme: str, factory: Callable[..., Any]) -> None:
        factories[str(scheme).lower()] = factory

    hookcall.call_sync(pm, "register_stores", register=register)
    return factories


def configure_plugins(
    pm: ExoclawPluginManager, settings: Settings, tables: Mapping[str, plugin_tables.Owned] | None = None
) -> None:
    """Hand every plugin its validated tables (once per settings)."""
    if pm.configured is settings:
        return
    plugin_tables.configure(pm, settings, plugin_tables.collect(pm, CORE_TABLES) if tables is None else tables)
    pm.configured = settings


__all__ = [
    "ExoclawPluginManager", "PluginRecord", "collect_providers", "collect_stores", "configure_plugins",
    "make_plugin_manager",
]
