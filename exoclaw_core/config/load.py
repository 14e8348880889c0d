"""Find, read and validate the config file (SPEC §3).

* :func:`resolve_config_path` — ``--config`` > ``$EXOCLAW_CONFIG`` > ``~/.exoclaw/config.toml``
* :func:`data_dir` — ``$EXOCLAW_HOME`` > ``~/.exoclaw``
* :func:`read_source` — the file's text and where it is
* :func:`parse_settings` — TOML text → :class:`Settings`, validated against the
  core's tables and the tables the loaded plugins declare

Every problem of a file is reported at once, in one :class:`ConfigError`.
The environment is always a parameter, so tests never read the real one.
"""

from __future__ import annotations

import os
import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from exoclaw_hooks import AgentConfig, ConfigContext, ConfigError, ProviderInfo

from . import build, checks, plugin_tables
from .defaults import env_value, expand_user
from exoclaw_hooks.config import TableArray

from .errors import Reporter
from .schema import CORE_TABLES, KNOWN_PROVIDERS, ConfigSchema, HooksSchema, config_schema
from .types import HooksConfig, Settings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["Source", "data_dir", "hooks_of", "parse_settings", "parse_toml", "read_source", "resolve_config_path"]

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


@dataclass(frozen=True)
class Source:
    """The config file as read: its text, how problems name it, where relative paths start."""

    text: str
    label: str
    config_dir: str
    config_path: str | None


def read_source(cli_path: str | None = None, env: Mapping[str, str] | None = None) -> Source:
    """Resolve the config path and read the file (zero-config: empty text)."""
    env = os.environ if env is None else env
    path, _explicit = resolve_config_path(cli_path, env)
    if path is None:  # where the default file would be
        return Source("", "config.toml", os.path.join(_home(env), ".exoclaw"), None)
    path = Path(os.path.abspath(path))
    return Source(_read(path), path.name, str(path.parent), str(path))


def hooks_of(source: Source) -> HooksConfig:
    """``[hooks]`` alone (which plugins to load comes before the other tables can be checked)."""
    raw = parse_toml(source.text, source.label)
    table = raw.get("hooks", {})
    schema = ConfigSchema()
    errors = schema.validate({"hooks": table})
    if errors:
        rep = Reporter(source.label)
        rep.walk(schema, errors, {"hooks": table}, "", ())
        raise ConfigError(rep.problems)
    return build.hooks(HooksSchema().load(table))


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
    config_path: str | None = None,
    providers: Mapping[str, ProviderInfo] | None = None,
    tables: Mapping[str, plugin_tables.Owned] | None = None,
    stores: Sequence[str] | None = None,
) -> Settings:
    """Validate a config file's text; raise ``ConfigError`` listing every problem.

    :param providers: the providers the loaded plugins register (``None``:
        any provider name passes, and none has a default model or key).
    :param tables: the tables the loaded plugins declare; any other table is
        unknown. Their contents are checked for shape here and kept as given
        in ``Settings.sections`` (their owners build them at start-up).
    :param stores: the URL schemes the loaded plugins' stores register
        (``None``: any scheme passes).
    """
    env = os.environ if env is None else env
    raw = parse_toml(text, path_label)
    flags = _apply_overrides(raw, overrides or {})
    providers = providers or {}
    tables = tables or {}
    schema = config_schema(plugin_tables.schema_fields(tables))
    reporter = Reporter(path_label, flags)
    ordered = sorted(providers.values(), key=lambda p: (p.auto is None, p.auto or 0, p.name))
    with _known_providers(tuple(p.name for p in ordered) if providers else None):
        errors = schema.validate(raw)
        reporter.walk(schema, errors, raw, "", ())
        agent_ids = checks.run(raw, errors, env, reporter, providers, stores)
        if tables:  # the plugins' own checks across keys, for every table whose shape is right
            _check_plugin_tables(raw, errors, tables, agent_ids, env, config_dir, reporter)
        if reporter.problems:
            raise ConfigError(plugin_tables.name_owners(reporter.problems, tables))
        data = ConfigSchema().load({k: v for k, v in raw.items() if k in CORE_TABLES})
    config_dir = os.path.abspath(expand_user(config_dir, env))
    return build.settings(
        data, env, providers=providers, sections={k: v for k, v in raw.items() if k not in CORE_TABLES},
        config_dir=config_dir, data_dir=str(data_dir(env)), config_path=config_path,
    )


def _check_plugin_tables(
    raw: Mapping[str, Any], errors: Mapping, tables: Mapping[str, plugin_tables.Owned], agent_ids: list[str],
    env: Mapping[str, str], config_dir: str, reporter: Reporter,
) -> None:
    fields = plugin_tables.schema_fields(tables)
    data: dict[str, Any] = {}
    skip: set[str] = set()
    for name in tables:
        if name not in raw:
            continue
        if checks.clean(errors, name):
            data[name] = fields[name].deserialize(raw[name])
        elif isinstance(fields[name], TableArray) and isinstance(raw[name], list) and isinstance(errors[name], dict):
            # the entries that are right are checked together; a wrong one is None (positions stay right)
            inner = fields[name].inner
            data[name] = [None if i in errors[name] else inner.deserialize(e) for i, e in enumerate(raw[name])]
        else:
            skip.add(name)
    stubs = {a: AgentConfig(id=a, provider="", model="") for a in agent_ids}
    context = ConfigContext(env=env, config_dir=config_dir, agents=stubs, default_agent=agent_ids[0] if agent_ids else "")
    _, problems = plugin_tables.build_all(tables, data, context, reporter.file, skip=skip.__contains__)
    reporter.problems.extend(problems)


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
