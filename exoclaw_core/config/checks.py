"""Checks that look across sections or at the environment.

They run on the raw TOML data next to the schema errors and skip any value
the schema already refused, so one mistake is reported once.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from . import defaults as d
from .errors import Reporter, show, table_label
from exoclaw_hooks.config import is_host, is_loopback

def _table(value: Any) -> Mapping:
    return value if isinstance(value, Mapping) else {}


def clean(errors: Mapping, *path: Any) -> bool:
    """True when the schema reported nothing at or under ``path``."""
    node: Any = errors
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return True
        node = node[key]
        if isinstance(node, Mapping) and node and set(node) <= {"key", "value"}:
            # an entry of a table of tables: {"key": [...], "value": {...}}
            if "key" in node:
                return False
            node = node["value"]
    return not node


def _str(table: Mapping, key: str, errors: Mapping, *path: Any) -> str | None:
    value = table.get(key)
    return value if isinstance(value, str) and clean(errors, *path, key) else None


def run(
    raw: Mapping, errors: Mapping, env: Mapping[str, str], rep: Reporter, providers: d.Providers,
    stores: Sequence[str] | None = None,
) -> list[str]:
    """Report what the schema cannot see; returns the agent ids."""
    agent_ids = _agents(raw, errors, env, rep, providers)
    _token(raw, errors, env, rep)
    _store(raw, errors, env, rep, stores)
    return agent_ids


def _store(raw: Mapping, errors: Mapping, env: Mapping[str, str], rep: Reporter, stores: Sequence[str] | None) -> None:
    """The store URL's scheme is one a loaded plugin registered (``stores`` ``None``: not checked)."""
    from_env = d.env_value(env, "EXOCLAW_STORE_URL")
    configured = None if from_env else _str(_table(raw.get("store")), "url", errors, "store")
    url = (from_env or configured or "").strip()
    if not url or stores is None:
        return
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in stores:
        return
    known = ", ".join(sorted(stores)) or "none (install or enable a store plugin)"
    what = f"has an unknown scheme {show(scheme)}" if scheme else "is not a URL like postgresql://user@host/db"
    message = f"{what}: the schemes the loaded plugins offer are {known}; leave it empty for SQLite"
    if from_env:
        rep.add("$EXOCLAW_STORE_URL", None, message)
    else:
        rep.add("[store]", "url", message, path=("store", "url"))


def _agents(raw: Mapping, errors: Mapping, env: Mapping[str, str], rep: Reporter, providers: d.Providers) -> list[str]:
    """Agent ids and provider-dependent keys; returns the known agent ids."""
    agent = _table(raw.get("agent"))
    default_id = _str(agent, "id", errors, "agent") or d.DEFAULT_AGENT_ID
    _agent_keys(agent, errors, ("agent",), env, rep, providers)
    ids = [default_id]
    for name, table in _table(raw.get("agents")).items():
        if name == default_id:
            rep.add(
                table_label(("agents", name)), None,
                f"has the same id as the default agent ([agent] id is {show(default_id)}); rename one of them",
            )
            continue
        if name:
            ids.append(name)
        if isinstance(table, Mapping):
            _agent_keys(table, errors, ("agents", name), env, rep, providers)
    return ids


def _agent_keys(
    table: Mapping, errors: Mapping, path: tuple, env: Mapping[str, str], rep: Reporter, providers: d.Providers
) -> None:
    if not clean(errors, *path, "provider"):
        return
    provider = table.get("provider") or d.default_provider(env, providers)
    where = table_label(path)
    info = providers.get(provider)
    if "model" not in table and (info is None or not info.default_model):
        rep.add(where, "model", f"is required for provider {show(provider)}, which has no default model")


#: a token that guards a non-loopback bind has at least this many non-space characters (issue 16)
MIN_PUBLIC_TOKEN_CHARS = 16


def _token(raw: Mapping, errors: Mapping, env: Mapping[str, str], rep: Reporter) -> None:
    """A whitespace-only token is a mistake anywhere; a non-loopback bind needs a real token.

    The token is ``$EXOCLAW_TOKEN`` or ``[gateway] token`` (non-empty); beyond
    loopback it must have at least :data:`MIN_PUBLIC_TOKEN_CHARS` non-space
    characters, so a guessable one cannot guard a public port.
    """
    gateway = _table(raw.get("gateway"))
    configured = _str(gateway, "token", errors, "gateway")
    from_env = d.env_value(env, "EXOCLAW_TOKEN")
    token = d.token(configured, env)
    source = "$EXOCLAW_TOKEN" if from_env else "[gateway] token"
    if token is not None and not token.strip():
        if from_env:
            rep.add("$EXOCLAW_TOKEN", None, "is only whitespace: set a real token or leave it empty")
        else:
            rep.add("[gateway]", "token", "is only whitespace: set a real token or leave it empty",
                    path=("gateway", "token"))
        return
    bind = _str(gateway, "bind", errors, "gateway")
    if bind is None or not is_host(bind) or is_loopback(bind):
        return
    if not token:
        rep.add(
            "[gateway]", "bind",
            "is not a loopback address, so a token is required: set $EXOCLAW_TOKEN or [gateway] token",
            bind, path=("gateway", "bind"),
        )
        return
    strength = len("".join(token.split()))
    if strength < MIN_PUBLIC_TOKEN_CHARS:
        rep.add(
            "[gateway]", "bind",
            f"is not a loopback address, so the token ({source}) must have at least "
            f"{MIN_PUBLIC_TOKEN_CHARS} non-space characters (it has {strength})",
            bind, path=("gateway", "bind"),
        )
