"""Configuration: find the TOML file, validate the core's tables and the plugins' tables."""

from .load import data_dir, parse_settings, parse_toml, read_source, resolve_config_path
from .types import GatewayConfig, HooksConfig, Settings

__all__ = [
    "GatewayConfig", "HooksConfig", "Settings",
    "data_dir", "parse_settings", "parse_toml", "read_source", "resolve_config_path",
]
