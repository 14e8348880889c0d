"""What a plugin registers, without a gateway: providers and settings tables."""

from __future__ import annotations

from typing import Any

from .._config import ProviderInfo, provider_register
from .._settings import SettingsTable


def providers_of(plugin: Any, host: Any = None) -> dict[str, ProviderInfo]:
    """Call ``plugin.register_providers`` as the core does; the providers by name.

    ``providers_of(myplugin)["mine"].factory(ProviderSettings(...))`` builds a
    provider the way the gateway would.
    """
    found: dict[str, ProviderInfo] = {}
    plugin.register_providers(register=provider_register(found), host=host)
    return found


def tables_of(plugin: Any) -> dict[str, SettingsTable]:
    """Call ``plugin.register_settings`` as the core does; the declared tables by name."""
    found: dict[str, SettingsTable] = {}
    plugin.register_settings(register=lambda table: found.__setitem__(table.name, table))
    return found
