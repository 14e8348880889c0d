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
from .plugins import ExoclawPluginManager, collect_providers, collect_stores, configure_plugins, make_plugin_manager
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
        stores=tuple(collect_stores(pm)),
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
    lock = None
    if memory_store:
        from .store.sqlite import SQLiteStore

        store: Any = SQLiteStore(None)
    elif settings.store_url:
        store = open_store_url(settings, pm)
    else:
        from .store.dirlock import lock_data_dir
        from .store.sqlite import open_store

        if exclusive:
            lock = lock_data_dir(settings.data_dir)
        store = open_store(Path(settings.data_dir).expanduser())
    rt = Runtime(settings, pm, store, **kwargs)
    rt.data_dir_lock = lock  # held for the runtime's (the process's) life
    return rt


def open_store_url(settings: Settings, pm: ExoclawPluginManager) -> Any:
    """The store ``settings.store_url`` names, opened by the plugin that registered its scheme.

    No fallback: a database named explicitly that cannot be reached is an
    error (:class:`~exoclaw_hooks.StoreUnavailable`, naming the URL without
    its password).
    """
    from exoclaw_hooks import StoreUnavailable, safe_url, url_password

    from .logs import register_secret

    url = settings.store_url
    register_secret(url_password(url))
    scheme = url.split("://", 1)[0].lower()
    factory = collect_stores(pm).get(scheme)
    if factory is None:  # the config check refuses this first; a store plugin disabled since?
        raise ConfigError(f"{settings.label}: [store] url: no loaded plugin offers the scheme \"{scheme}\"")
    try:
        store = factory(url, data_dir=str(Path(settings.data_dir).expanduser()))
    except StoreUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001 - one sentence, never the password
        from .logs import redact

        raise StoreUnavailable(
            f"cannot open the store {safe_url(url)}: {redact(str(exc)) or type(exc).__name__}") from None
    log.info("event=store_opened kind=%s url=%s", store.describe().get("kind"), safe_url(url))
    return store


__all__ = ["ConfigError", "check_source", "load_checked", "load_settings", "open_runtime", "open_store_url"]
