"""Defaults that depend on the environment or on what the plugins registered (SPEC §3)."""

from __future__ import annotations

from typing import Mapping

from exoclaw_hooks import ProviderInfo
from exoclaw_hooks._settings import expand_user

__all__ = ["DEFAULT_AGENT_ID", "api_key", "default_provider", "env_value", "expand_user", "resolve_path", "store_url", "token"]

DEFAULT_AGENT_ID = "default"
#: with no plugin that can run without a key, zero-config still needs a name to report
FALLBACK_PROVIDER = "echo"

Providers = Mapping[str, ProviderInfo]


def env_value(env: Mapping[str, str], name: str) -> str | None:
    """An environment variable, ``None`` when unset or empty."""
    return env.get(name) or None


def default_provider(env: Mapping[str, str], providers: Providers) -> str:
    """Zero-config: the provider of lowest ``auto`` whose key is set or that needs none.

    With the builtins: Anthropic if its key is set, else OpenAI if its key is
    set, else the offline echo.
    """
    ready = [
        p for p in providers.values()
        if p.auto is not None and (p.key_env is None or env_value(env, p.key_env))
    ]
    if not ready:
        return FALLBACK_PROVIDER
    return min(ready, key=lambda p: (p.auto, p.name)).name


def api_key(provider: str, configured: str | None, env: Mapping[str, str], providers: Providers) -> str | None:
    """``api_key`` from the config (non-empty), else the provider's environment variable."""
    if configured:
        return configured
    info = providers.get(provider)
    return env_value(env, info.key_env) if info is not None and info.key_env else None


def store_url(configured: str | None, env: Mapping[str, str]) -> str:
    """``$EXOCLAW_STORE_URL`` (preferred) else ``[store] url``; empty: SQLite in the data directory."""
    return (env_value(env, "EXOCLAW_STORE_URL") or configured or "").strip()


def token(configured: str | None, env: Mapping[str, str]) -> str | None:
    """``$EXOCLAW_TOKEN`` (preferred) else ``[gateway] token``; empty counts as none."""
    return env_value(env, "EXOCLAW_TOKEN") or configured or None


def resolve_path(path: str, base_dir: str, env: Mapping[str, str]) -> str:
    """Expand ``~``; a relative path is taken from ``base_dir`` (the config file's directory)."""
    import os

    path = expand_user(path, env)
    if not os.path.isabs(path):
        path = os.path.join(base_dir, path)
    return os.path.normpath(path)
