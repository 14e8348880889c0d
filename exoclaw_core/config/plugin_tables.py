"""The tables plugins own (``register_settings``): collected, validated, built, handed over.

Each plugin gets only its own table: the core validates it with the same
located messages as its own tables (unknown keys are errors), lets the
plugin's ``build`` check across keys, and calls ``apply`` with the result.
A table nobody loaded declares is an unknown table; two plugins declaring
one table with different schemas is a start-up error naming both.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Mapping

from marshmallow import Schema, fields

from exoclaw_hooks import ConfigContext, ConfigError, SettingsTable
from exoclaw_hooks.config import Nested

from .errors import Reporter, table_label
from .types import Settings

log = logging.getLogger("exoclaw.config")


@dataclass
class Owned:
    """One table and the plugins that declared it (several only when they share the spec)."""

    table: SettingsTable
    owners: list[str] = field(default_factory=list)
    applies: list[Any] = field(default_factory=list)
    #: where the first owner came from ("builtin", "<dist> <version>" …)
    source: str = "builtin"

    def field(self) -> fields.Field:
        spec = self.table.spec
        if isinstance(spec, type) and issubclass(spec, Schema):
            return Nested(spec)
        return spec

    def empty(self) -> Any:
        spec = self.table.spec
        return [] if isinstance(spec, fields.List) else {}


def collect(pm: Any, reserved: Mapping[str, Any] = ()) -> dict[str, Owned]:
    """Every table the loaded plugins declare. A clash is a ``ConfigError`` naming both plugins.

    ``reserved`` are the core's own table names: a plugin may not take them.
    """
    tables: dict[str, Owned] = {}
    problems: list[str] = []
    for impl in reversed(pm.hook.register_settings.get_hookimpls()):
        plugin = impl.plugin_name
        declared: list[SettingsTable] = []

        def register(table: SettingsTable, _into: list[SettingsTable] = declared) -> None:
            if not isinstance(table, SettingsTable):
                raise TypeError(f"register() takes a SettingsTable, not {type(table).__name__}")
            _into.append(table)

        try:
            function = getattr(impl.function, "__wrapped__", impl.function)  # unguarded: failures are ours to report
            function(*[{"register": register}[a] for a in impl.argnames])
        except Exception as exc:  # noqa: BLE001 - the plugin is reported and left without settings
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())
            log.error("event=plugin_settings_failed plugin=%s reason=%s", plugin, reason)
            pm.mark_failed(plugin, f"register_settings failed: {reason}")
            continue
        for table in declared:
            if table.name in reserved:
                problems.append(f"plugin {plugin} declares the table {table_label((table.name,))}, which is the core's own")
                continue
            owned = tables.get(table.name)
            if owned is None:
                source_of = getattr(pm, "source_of", None)
                tables[table.name] = owned = Owned(table, source=source_of(plugin) if source_of else "builtin")
            elif owned.table.spec is not table.spec:
                problems.append(
                    f"plugins {owned.owners[0]} and {plugin} both declare the table "
                    f"{table_label((table.name,))}; disable one of them ([hooks] disable)"
                )
                continue
            owned.owners.append(plugin)
            owned.applies.append(table)
    if problems:
        raise ConfigError(problems)
    return tables


def schema_fields(tables: Mapping[str, Owned]) -> dict[str, fields.Field]:
    return {name: owned.field() for name, owned in tables.items()}


def build_all(
    tables: Mapping[str, Owned], data: Mapping[str, Any], context: ConfigContext, label: str,
    skip: Any = lambda name: False,
) -> tuple[dict[str, Any], list[str]]:
    """Build each table from its validated ``data``; returns the results and the builds' problems, located."""
    built: dict[str, Any] = {}
    problems: list[str] = []
    for name, owned in tables.items():
        if skip(name):
            continue
        value = data.get(name, owned.empty())
        if owned.table.build is not None:
            try:
                value = owned.table.build(value, context)
            except ConfigError as exc:
                # "key: problem" is located in the table; "[...] ..." is located already
                where = f"{label}: {table_label((name,))}"
                problems.extend(f"{label}: {p}" if p.startswith("[") else f"{where} {p}" for p in exc.problems)
                continue
        built[name] = value
    return built, problems


def configure(pm: Any, settings: Settings, tables: Mapping[str, Owned] | None = None) -> None:
    """Validate, build and apply every plugin's table from ``settings.sections``.

    :raises ConfigError: every problem, located in the file (a third-party
        plugin's table names the plugin).
    """
    tables = collect(pm) if tables is None else tables
    rep = Reporter(settings.label)
    unknown = sorted(set(settings.sections) - set(tables))
    for name in unknown:
        rep.add(table_label((name,)), None, "unknown table (no loaded plugin declares it)")
    schema = Schema.from_dict(schema_fields(tables))()
    raw = {k: v for k, v in settings.sections.items() if k in tables}
    errors = schema.validate(raw)
    if errors:
        rep.walk(schema, errors, raw, "", ())
    if rep.problems:
        raise ConfigError(name_owners(rep.problems, tables))
    data = schema.load(raw)
    context = ConfigContext(
        env=settings.env, config_dir=settings.config_dir, data_dir=settings.data_dir,
        agents={k: a.public() for k, a in settings.agents.items()}, default_agent=settings.default_agent,
    )
    built, problems = build_all(tables, data, context, settings.label)
    if problems:
        raise ConfigError(name_owners(problems, tables))
    for name, owned in tables.items():
        for table in owned.applies:
            table.apply(built[name])
    pm.sections = built


def name_owners(problems: list[str], tables: Mapping[str, Owned]) -> list[str]:
    """Problems with a third-party plugin's table say which plugin reads it (builtins are in SPEC)."""
    third = {name: o.owners[0] for name, o in tables.items() if o.source != "builtin"}
    if not third:
        return problems
    out = []
    for problem in problems:
        where = problem.split(": ", 1)[-1]  # after the file's label: where the problem is
        owner = next((p for name, p in third.items() if where.startswith((f"[{name}]", f"[{name}.", f"[[{name}]]"))), None)
        out.append(f"{problem} (plugin {owner})" if owner else problem)
    return out
