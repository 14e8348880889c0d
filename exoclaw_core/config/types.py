"""The core's own configuration: the gateway, the agents, which plugins run.

Everything else in the file belongs to a plugin (``SettingsTable``): the core
keeps those tables as given (``Settings.sections``) and hands each to its
owner at start-up (:mod:`.plugin_tables`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from exoclaw_hooks import AgentConfig


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    bind: str = "127.0.0.1"
    port: int = 7200
    token: str | None = field(default=None, repr=False)
    max_message_bytes: int = 1024 * 1024
    allowed_origins: tuple[str, ...] = ()
    #: permessage-deflate on /ws (off: it costs more CPU and memory than it saves on small chunk frames)
    ws_compression: bool = False
    #: seconds a new connection has to send a whole request head
    header_timeout_s: float = 10.0
    #: seconds a request's body may take to arrive
    body_timeout_s: float = 30.0
    #: seconds an idle keep-alive HTTP connection stays open
    idle_timeout_s: float = 60.0
    #: open client connections at most; ``None``: derived from the open-files limit
    max_connections: int | None = None


@dataclass(frozen=True, slots=True)
class HooksConfig:
    disable: tuple[str, ...] = ()
    load: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Settings:
    """The whole validated configuration."""

    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    agents: Mapping[str, AgentConfig] = field(default_factory=dict)
    default_agent: str = "default"
    hooks: HooksConfig = field(default_factory=HooksConfig)
    #: the plugins' tables, as the file gave them (name -> table or array of tables)
    sections: Mapping[str, Any] = field(default_factory=dict)
    #: directory of the config file (relative paths resolve against it)
    config_dir: str = "."
    #: data directory ($EXOCLAW_HOME)
    data_dir: str = "~/.exoclaw"
    config_path: str | None = None
    #: ``$EXOCLAW_STORE_URL`` else ``[store] url``; empty: SQLite in the data directory (may hold a password)
    store_url: str = field(default="", repr=False)
    #: seconds a claim on a webhook delivery lasts unless renewed ([store] lease_s)
    store_lease_s: float = 30.0
    #: the environment the settings were read with (plugins read secrets from it by name)
    env: Mapping[str, str] = field(default_factory=lambda: os.environ, repr=False, compare=False)

    @property
    def label(self) -> str:
        """How problems name the file: its base name, or ``config.toml``."""
        return os.path.basename(self.config_path) if self.config_path else "config.toml"
