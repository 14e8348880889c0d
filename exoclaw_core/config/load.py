"""Find, read and validate the config file (SPEC §3).

* :func:`resolve_config_path` — ``--config`` > ``$EXOCLAW_CONFIG`` > ``~/.exoclaw/config.toml``
* :func:`data_dir` — ``$EXOCLAW_HOME`` > ``~/.exoclaw``
* :func:`load_settings` — all of it, from the command line's view
* :func:`parse_settings` — TOML text → :class:`exoclaw_hooks.Settings`

Every problem of a file is reported at once, in one :class:`ConfigError`.
The environment is always a parameter, so tests never read the real one.
"""

from __future__ import annotations

import os
import re
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from exoclaw_hooks import ConfigError, Settings

from . import build, checks
from .defaults import expand_user, env_value
from .errors import Reporter
from .fields import BUILTIN_PROVIDERS, KNOWN_PROVIDERS
from .schema import ConfigSchema

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["data_dir", "load_settings", "parse_settings", "parse_toml", "resolve_config_path"]

#: ``overrides`` keys the CLI may pass, and how a problem with each is labelled
OVERRIDES = {"bind": "--bind", "port": "--port"}
_TOML_AT = re.compile(r"^(?P<reason>.*?) \(at (?:line (?P<line>\d+), column (?P<col>\d+)|end of document)\)$", re.S)


def _home(env: Mapping[str, str]) -> str:
    return expand_user("~", env)


def data_dir(env: Mapping[str, str] = os.environ) -> Path:
    """The data directory: ``$EXOCLAW_HOME`` else ``~/.exoclaw`` (``~`` expanded)."""
    configured = env_value(env, "EXOCLAW_HOME")
    return Path(os.path.abspath(expand_user(configured, env) if configured else os.path.join(_home(env), ".exoclaw")))


def resolve_config_path(cli_path: str | None = None, env: Mapping[str, str] = os.environ) -> tuple[Path | None, bool]:
    """Which file to read, and whether it was asked for explicitly.

    ``--config`` wins over ``$EXOCLAW_CONFIG``, which wins over
    ``~/.exoclaw/config.toml``. No file at the default path → ``(None, False)``
    (zero-config); an explicit path that does not exist is a ``ConfigError``.
    """
    given = cli_path or env_value(env, "EXOCLAW_CONFIG")
    if given:
        path = Path(expand_user(str(given), env))
        if not path.exists():
            raise ConfigError(f"{path}: no such config file")
        if path.is_dir():
            raise ConfigError(f"{path}: is a directory, not a config file")
        return path, True
    path = Path(_home(env)) / ".exoclaw" / "config.toml"
    return (path, False) if path.exists() else (None, False)


def load_settings(
    cli_path: str | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    known_providers: Iterable[str] | None = (),
) -> Settings:
    """Resolve the config path, read the file (if any) and validate it.

    ``overrides`` are the CLI's ``{"bind": ..., "port": ...}`` (``None`` = not
    given); they replace the file's ``[gateway]`` values before validation.
    ``known_providers`` are provider names added by plugins.
    """
    env = os.environ if env is None else env
    path, _explicit = resolve_config_path(cli_path, env)
    if path is None:
        text, label, config_path = "", "config.toml", None
        config_dir = os.path.join(_home(env), ".exoclaw")  # where the default file would be
    else:
        path = Path(os.path.abspath(path))
        text, label, config_path, config_dir = _read(path), path.name, str(path), str(path.parent)
    return parse_settings(
        text, path_label=label, config_dir=config_dir, env=env, overrides=overrides,
        known_providers=known_providers, config_path=config_path,
    )


def _read(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path.name}: not valid UTF-8 (byte {exc.start})") from None


def parse_toml(text: str, path_label: str = "config.toml") -> dict[str, Any]:
    """TOML text → dict, or ``ConfigError("<file>: invalid TOML at line L, column C: <reason>")``."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        m = _TOML_AT.match(message)
        reason = m.group("reason") if m else message
        if m and m.group("line"):
            line, col = int(m.group("line")), int(m.group("col"))
        else:  # "at end of document"
            line, col = text.count("\n") + 1, len(text.rsplit("\n", 1)[-1]) + 1
        reason = reason[:1].lower() + reason[1:]
        raise ConfigError(f"{path_label}: invalid TOML at line {line}, column {col}: {reason}") from None


def parse_settings(
    text: str,
    *,
    path_label: str = "config.toml",
    config_dir: str = ".",
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    known_providers: Iterable[str] | None = (),
    config_path: str | None = None,
) -> Settings:
    """Validate a config file's text; raise ``ConfigError`` listing every problem."""
    env = os.environ if env is None else env
    raw = parse_toml(text, path_label)
    flags = _apply_overrides(raw, overrides or {})
    # ``None``: any provider name passes (a first pass, before plugins said which exist)
    providers = None if known_providers is None else tuple(dict.fromkeys((*BUILTIN_PROVIDERS, *known_providers)))
    reporter = Reporter(path_label, flags)
    with _known_providers(providers):
        errors = ConfigSchema().validate(raw)
        reporter.walk(ConfigSchema(), errors, raw, "", ())
        checks.run(raw, errors, env, reporter)
        if reporter.problems:
            raise ConfigError(reporter.problems)
        data = ConfigSchema().load(raw)
    config_dir = os.path.abspath(expand_user(config_dir, env))
    return build.settings(
        data, env, config_dir=config_dir, data_dir=str(data_dir(env)), config_path=config_path
    )


@contextmanager
def _known_providers(names: tuple[str, ...] | None) -> Iterator[None]:
    token = KNOWN_PROVIDERS.set(names)
    try:
        yield
    finally:
        KNOWN_PROVIDERS.reset(token)


def _apply_overrides(raw: dict[str, Any], overrides: Mapping[str, Any]) -> dict[tuple[str, ...], str]:
    """Put the CLI's ``--bind``/``--port`` into ``[gateway]``; returns the relabelled paths."""
    unknown = set(overrides) - set(OVERRIDES)
    if unknown:
        raise ValueError(f"unknown config overrides: {', '.join(sorted(unknown))}")
    flags: dict[tuple[str, ...], str] = {}
    given = {k: v for k, v in overrides.items() if v is not None}
    if not given:
        return flags
    gateway = raw.setdefault("gateway", {})
    if not isinstance(gateway, dict):
        return flags  # the file's [gateway] is already wrong; that error is reported
    for key, value in given.items():
        gateway[key] = value
        flags[("gateway", key)] = OVERRIDES[key]
    return flags
