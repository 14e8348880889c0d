"""Configuration: find the TOML file, validate it, build :class:`exoclaw_hooks.Settings`."""

from .load import data_dir, load_settings, parse_settings, parse_toml, resolve_config_path

__all__ = ["data_dir", "load_settings", "parse_settings", "parse_toml", "resolve_config_path"]
