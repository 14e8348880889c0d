"""Defaults that depend on the environment (SPEC §3), shared by checks and build."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

#: the model an agent gets when its table names a provider but no model
DEFAULT_MODELS = {"anthropic": "claude-sonnet-4-5", "openai": "gpt-4o-mini", "echo": "echo"}
#: where a provider's API key comes from when the config has no ``api_key``
KEY_ENV = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}
DEFAULT_AGENT_ID = "default"
DEFAULT_BIND = "127.0.0.1"


def env_value(env: Mapping[str, str], name: str) -> str | None:
    """An environment variable, ``None`` when unset or empty."""
    return env.get(name) or None


def default_provider(env: Mapping[str, str]) -> str:
    """Anthropic if its key is set, else OpenAI if its key is set, else the offline echo."""
    if env_value(env, "ANTHROPIC_API_KEY"):
        return "anthropic"
    if env_value(env, "OPENAI_API_KEY"):
        return "openai"
    return "echo"


def api_key(provider: str, configured: str | None, env: Mapping[str, str]) -> str | None:
    """``api_key`` from the config (non-empty), else the provider's environment variable."""
    if configured:
        return configured
    name = KEY_ENV.get(provider)
    return env_value(env, name) if name else None


def token(configured: str | None, env: Mapping[str, str]) -> str | None:
    """``$EXOCLAW_TOKEN`` (preferred) else ``[gateway] token``; empty counts as none."""
    return env_value(env, "EXOCLAW_TOKEN") or configured or None


def expand_user(path: str, env: Mapping[str, str]) -> str:
    """``~`` → ``$HOME`` taken from ``env`` (so tests never see the real home)."""
    if path == "~" or path.startswith("~/") or path.startswith("~" + os.sep):
        home = env_value(env, "HOME") or str(Path.home())
        return home + path[1:]
    return os.path.expanduser(path)


def resolve_path(path: str, base_dir: str, env: Mapping[str, str]) -> str:
    """Expand ``~``; a relative path is taken from ``base_dir`` (the config file's directory)."""
    path = expand_user(path, env)
    if not os.path.isabs(path):
        path = os.path.join(base_dir, path)
    return os.path.normpath(path)
