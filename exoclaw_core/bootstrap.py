"""Building a runtime from a config file: ``[hooks]`` → plugins → settings → their tables → store → runtime.

Which plugins load comes first (``[hooks]``), because the plugins say which
providers exist and which other tables the file may have. Used by
``exoclaw serve``, by the CLI commands that need the plugins, and by tests
that want a gateway exactly as a user would get it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable, Mapping

from exoclaw_hooks import ConfigError

from .config import plugin_tables
from .config.load import Source, hooks_of, parse_settings, read_source
from .config.schema import CORE_TABLES
from .config.types import Settings
from .plugins import ExoclawPluginManager, collect_providers, configure_plugins, make_plugin_manager
from .runtime import Runtime

log = logging.getLogger("exoclaw.bootstrap")


def load_checked(
    config_path: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
    load_entrypoints: bool = True,
    plugins: Iterable[tuple[str, Any]] = (),
) -> tuple[Settings, ExoclawPluginManager]:
    """Read and validate the config, load the plugins, and hand each plugin its tables.

    :raises ConfigError: every problem, located in the file.
    """
    return check_source(read_source(config_path, env), env=env, overrides=overrides,
                        load_entrypoints=load_entrypoints, plugins=plugins)


def check_source(
    source: Source,
    *,
    env: Mapping[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
    load_entrypoints: bool = True,
    plugins: Iterable[tuple[str, Any]] = (),
) -> tuple[Settings, ExoclawPluginManager]:
    """:func:`load_checked` for a config file's text already read."""
    pm = make_plugin_manager(
        Settings(hooks=hooks_of(source), config_path=source.config_path),
        load_entrypoints=load_entrypoints, plugins=plugins,
    )
    tables = plugin_tables.collect(pm, reserved=CORE_TABLES)
    settings = parse_settings(
        source.text, path_label=source.label, config_dir=source.config_dir, env=env, overrides=overrides,
        config_path=source.config_path, providers=collect_providers(pm), tables=tables,
    )
    configure_plugins(pm, settings, tables)
    return settings, pm


def load_settings(
    config_path: str | None = None, env: Mapping[str, str] | None = None, overrides: dict[str, Any] | None = None,
) -> Settings:
    """The settings of a config file, validated against the installed plugins."""
    return load_checked(config_path, env=env, overrides=overrides)[0]


def open_runtime(
    settings: Settings, pm: ExoclawPluginManager, *, memory_store: bool = False, exclusive: bool = False,
    **kwargs: Any,
) -> Runtime:
    """The runtime with its store opened.

    ``exclusive`` (``exoclaw serve``): the gateway owns its SQLite data
    directory; a second one on the same directory is refused
    (:class:`~exoclaw_core.store.dirlock.DataDirBusy`).
    """
    from .store.dirlock import lock_data_dir
    from .store.sqlite import open_store

    lock = None
    if exclusive and not memory_store:
        lock = lock_data_dir(settings.data_dir)
    store = open_store(None if memory_store else Path(settings.data_dir).expanduser())
    rt = Runtime(settings, pm, store, **kwargs)
    rt.data_dir_lock = lock  # held for the runtime's (the process's) life
    return rt


__all__ = ["ConfigError", "check_source", "load_checked", "load_settings", "open_runtime"]
