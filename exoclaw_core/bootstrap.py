"""Building a runtime from a config file: settings → plugins → store → runtime.

Used by ``exoclaw serve``, by the CLI commands that need the plugins, and by
tests that want a gateway exactly as a user would get it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable, Mapping

from exoclaw_hooks import ConfigError, Settings

from . import hookcall
from .config.load import load_settings
from .plugins import ExoclawPluginManager, make_plugin_manager
from .runtime import Runtime

log = logging.getLogger("exoclaw.bootstrap")


def provider_names(pm: ExoclawPluginManager) -> list[str]:
    """The provider names the loaded plugins register (without building any provider)."""
    names: list[str] = []
    hookcall.call_sync(pm, "register_providers", register=lambda name, factory: names.append(name), host=None)
    return names


def load_checked(
    config_path: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
    load_entrypoints: bool = True,
    plugins: Iterable[tuple[str, Any]] = (),
) -> tuple[Settings, ExoclawPluginManager]:
    """Load and validate the settings, then the plugins; provider names are checked against the plugins."""
    try:
        settings = load_settings(config_path, env=env, overrides=overrides, known_providers=None)
    except ConfigError:
        # report against the providers the installed plugins register, for the exact texts
        names = provider_names(make_plugin_manager(Settings(), load_entrypoints=load_entrypoints, plugins=plugins))
        settings = load_settings(config_path, env=env, overrides=overrides, known_providers=names)
    pm = make_plugin_manager(settings, load_entrypoints=load_entrypoints, plugins=plugins)
    known = provider_names(pm)
    if any(a.provider not in known or (a.fallback and a.fallback.provider not in known) for a in settings.agents.values()):
        # validate again, now knowing which providers exist, for the exact error text
        settings = load_settings(config_path, env=env, overrides=overrides, known_providers=known)
    return settings, pm


def open_runtime(settings: Settings, pm: ExoclawPluginManager, *, memory_store: bool = False, **kwargs: Any) -> Runtime:
    from .store.sqlite import open_store

    store = open_store(None if memory_store else Path(settings.data_dir).expanduser())
    return Runtime(settings, pm, store, **kwargs)


__all__ = ["ConfigError", "load_checked", "open_runtime", "provider_names"]
