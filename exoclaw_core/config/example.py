"""The commented example config, generated from the declared settings (``exoclaw config example``).

Every table the file may have is declared with a marshmallow schema — the
core's in :mod:`.schema`, each plugin's through ``register_settings`` — and
every field carries ``metadata``:

* ``doc``: the comment written above the key (or in the table's key list);
* ``example``: the value written, as an active line (``key = value``);
* ``hint``: a value written as a commented line (``# key = value``), for
  keys that are better left out (secrets, keys needing a key of their own);
* neither: a commented line naming the kind of value (``# key = <number>``).

Sub-tables (``Nested``) are written active only when their field has an
``example`` (e.g. ``true``); otherwise the whole sub-table is commented, so
a sub-table with required keys is shown without being configured. Tables of
tables (``Table(Nested(...))``: ``[agents.NAME]``, ``[pricing."p:m"]``) and
arrays of tables (``TableArray``: ``[[plugins]]``) list their keys with their
docs once (unless the field says ``list_keys: False``, when another table
documents the same keys), then write the field's ``example`` entries (a
mapping of name to entry, or a list of entries) active and its ``hint``
entries commented.

:func:`render` with ``values`` writes the same file for ``exoclaw init``:
every example commented out, and only ``values`` (the choices made) active.
"""

from __future__ import annotations

import json
import math
import textwrap
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from marshmallow import Schema, fields

from exoclaw_hooks.config import Bool, Int, Num, Str, StrList, Table, TableArray

from .errors import table_label, toml_key

WIDTH = 78
RULE = "# " + "-" * (WIDTH - 2)
_NOTHING = object()

HEADER = """\
Exoclaw configuration, generated from the settings every table declares
(`exoclaw config example` prints it; the core's tables and every loaded
plugin's, each key with its documentation).

Use it:   exoclaw serve --config FILE
Check it: exoclaw config check --config FILE   (keys, tools and plugins too)

Every table and key is optional unless marked "required"; with no file at all
Exoclaw runs zero-config (127.0.0.1:7200, no auth, one agent). Unknown keys
are errors, so a typo never goes unnoticed. Relative paths are resolved
against the directory of this file, and `~` is expanded. Secrets (API keys,
tokens) are best left to environment variables, which the keys below name."""


@dataclass(frozen=True)
class TableSpec:
    """One top-level table: its name, its field (``Nested(Schema)`` or another shape) and its doc."""

    name: str
    field: fields.Field
    doc: str = ""


def render(tables: Iterable[TableSpec], values: Mapping[str, Any] | None = None, header: str = HEADER) -> str:
    """The whole file. ``values`` given: the examples commented, only ``values`` active (``exoclaw init``)."""
    out = Writer(init=values is not None)
    out.comment_block(header)
    for table in tables:
        out.blank()
        out.line(RULE)
        given = (values or {}).get(table.name, _NOTHING)
        out.table(table, given)
    return "\n".join(out.lines).rstrip() + "\n"


class Writer:
    def __init__(self, init: bool):
        self.init = init
        self.lines: list[str] = []

    # ------------------------------------------------------------------ lines

    def line(self, text: str, *, commented: bool = False) -> None:
        self.lines.append("# " + text if commented else text)

    def blank(self) -> None:
        if self.lines and self.lines[-1] != "":
            self.lines.append("")

    def comment(self, text: str, indent: str = "") -> None:
        for paragraph in text.split("\n"):
            wrapped = textwrap.wrap(paragraph, WIDTH - 2 - len(indent), break_on_hyphens=False) or [""]
            self.lines.extend(f"# {indent}{w}".rstrip() for w in wrapped)

    def comment_block(self, text: str) -> None:
        self.lines.extend(f"# {line}".rstrip() for line in text.splitlines())

    # ------------------------------------------------------------------ tables

    def table(self, table: TableSpec, given: Any) -> None:
        fld = table.field
        path = (table.name,)
        if isinstance(fld, TableArray):
            self.comment_doc(table.doc or _doc(fld))
            self.entries(path, _schema(fld.inner), fld, given, array=True)
        elif _is_table_of_tables(fld):
            self.comment_doc(table.doc or _doc(fld))
            self.entries(path, _schema(fld.value_field), fld, given, array=False)
        elif isinstance(fld, fields.Nested):
            self.section(path, _schema(fld), table.doc or _doc(fld) or _class_doc(_schema(fld)), given, active=True)
        else:  # a table of free-form or scalar values
            self.comment_doc(table.doc or _doc(fld))
            self.section_values(path, fld, given)

    def comment_doc(self, doc: str) -> None:
        if doc:
            self.comment(doc)

    def section(self, path: tuple[str, ...], schema: Schema, doc: str, given: Any, *, active: bool) -> None:
        """A plain table: each key with its doc, then its sub-tables."""
        given_map = given if isinstance(given, Mapping) else {}
        lines = Writer(self.init)
        subtables: list[tuple[str, fields.Field]] = []
        any_active = False
        for name, fld in schema.fields.items():
            if fld.metadata.get("skip"):
                continue
            if _is_subtable(fld):
                subtables.append((name, fld))
                continue
            lines.comment_doc(_doc(fld))
            value = given_map.get(name, _NOTHING)
            if self.init or not active:
                shown = toml_value(value) if value is not _NOTHING else _value(fld)
                on = value is not _NOTHING
            else:
                shown, on = _value(fld), "example" in fld.metadata
            any_active = any_active or on
            text = shown.text if isinstance(shown, _Placeholder) else shown
            lines.line(f"{toml_key(name)} = {text}", commented=not on)
        header_on = any_active or (active and not self.init and bool(schema.fields))
        if doc:
            self.comment(doc)
        self.line(table_label(path), commented=not header_on)
        self.lines.extend(lines.lines)
        for name, fld in subtables:
            self.blank()
            sub_given = given_map.get(name, _NOTHING)
            self.subtable(path + (name,), fld, sub_given, parent_active=header_on and active)

    def subtable(self, path: tuple[str, ...], fld: fields.Field, given: Any, *, parent_active: bool) -> None:
        if _is_table_of_tables(fld):
            self.comment_doc(_doc(fld))
            self.entries(path, _schema(fld.value_field), fld, given, array=False)
            return
        schema = _schema(fld)
        if self.init:
            active = given is not _NOTHING
        else:
            active = parent_active and bool(fld.metadata.get("example"))
        self.section(path, schema, _doc(fld) or _class_doc(schema), given if active else _NOTHING, active=active)

    def section_values(self, path: tuple[str, ...], fld: fields.Field, given: Any) -> None:
        """A top-level table whose values are not tables (free-form): its example entries."""
        example = given if given is not _NOTHING else fld.metadata.get("example", fld.metadata.get("hint"))
        on = (given is not _NOTHING) if self.init else "example" in fld.metadata
        self.line(table_label(path), commented=not on)
        for key, value in (example or {}).items():
            self.line(f"{toml_key(key)} = {toml_value(value)}", commented=not on)

    def entries(self, path: tuple[str, ...], schema: Schema, fld: fields.Field, given: Any, *, array: bool) -> None:
        """``[[name]]`` entries or ``[name.KEY]`` tables: the key list once, then each entry."""
        docs = [(name, _doc(f)) for name, f in schema.fields.items() if not f.metadata.get("skip")]
        if fld.metadata.get("list_keys", True) and any(doc for _, doc in docs):
            width = max(len(toml_key(n)) for n, _ in docs) + 2
            self.comment("Keys:")
            for name, doc in docs:
                head = f"  {toml_key(name).ljust(width)}"
                wrapped = textwrap.wrap(doc or "", WIDTH - 2 - len(head), break_on_hyphens=False) or [""]
                self.lines.append(f"# {head}{wrapped[0]}".rstrip())
                self.lines.extend(f"# {' ' * len(head)}{w}".rstrip() for w in wrapped[1:])
        listed = self.lines[-1].startswith("#   ") if self.lines else False
        active_entries, commented_entries = _entries_of(fld, given, self.init)
        first = True
        for entries, on in ((active_entries, True), (commented_entries, False)):
            items = list(entries.items()) if isinstance(entries, Mapping) else [(None, e) for e in entries]
            for key, entry in items:
                if listed or not first:  # the key list stands apart; a short doc stays on its first entry
                    self.blank()
                first = False
                header = f"[{table_label(path)}]" if array else table_label(path + (key,))
                self.entry(header, schema, entry, on)

    def entry(self, header: str, schema: Schema, entry: Mapping[str, Any], on: bool) -> None:
        self.line(header, commented=not on)
        scalars = {k: v for k, v in entry.items() if not _is_subtable(schema.fields.get(k))}
        for key, value in scalars.items():
            self.line(f"{toml_key(key)} = {toml_value(value)}", commented=not on)
        for key, value in entry.items():
            if key in scalars:
                continue
            sub = header.strip("[]")
            self.line(f"[{sub}.{toml_key(key)}]", commented=not on)
            for k, v in value.items():
                self.line(f"{toml_key(k)} = {toml_value(v)}", commented=not on)


# ---------------------------------------------------------------------- helpers


class _Placeholder:
    def __init__(self, text: str):
        self.text = text


def _value(fld: fields.Field) -> Any:
    if "example" in fld.metadata:
        return toml_value(fld.metadata["example"])
    if "hint" in fld.metadata:
        return toml_value(fld.metadata["hint"])
    return _Placeholder(_kind(fld))


def _kind(fld: fields.Field) -> str:
    if isinstance(fld, Str):
        return "<string>"
    if isinstance(fld, Int):
        return "<integer>"
    if isinstance(fld, Num):
        return "<number>"
    if isinstance(fld, Bool):
        return "<true|false>"
    if isinstance(fld, StrList):
        return "[<string>, ...]"
    if isinstance(fld, (Table, fields.Dict)):
        return "{ <key> = <value>, ... }"
    return "<value>"


def _doc(fld: fields.Field | None) -> str:
    return str(fld.metadata.get("doc", "")) if fld is not None else ""


def _class_doc(schema: Schema) -> str:
    doc = (type(schema).__doc__ or "").strip()
    return doc.split("\n\n")[0].replace("\n", " ") if doc else ""


def _schema(fld: fields.Field) -> Schema:
    schema = fld.schema if isinstance(fld, fields.Nested) else fld
    return schema() if isinstance(schema, type) else schema


def _is_table_of_tables(fld: fields.Field | None) -> bool:
    return isinstance(fld, fields.Dict) and isinstance(getattr(fld, "value_field", None), fields.Nested)


def _is_subtable(fld: fields.Field | None) -> bool:
    return isinstance(fld, fields.Nested) or _is_table_of_tables(fld)


def _entries_of(fld: fields.Field, given: Any, init: bool) -> tuple[Any, Any]:
    """(active entries, commented entries) of a table of tables or an array of tables."""
    example = fld.metadata.get("example")
    hint = fld.metadata.get("hint")
    empty: Any = [] if isinstance(fld, TableArray) else {}
    if init:
        chosen = given if given is not _NOTHING else empty
        shown = _merge(example, hint, empty)
        return chosen, shown
    if example is None and hint is None and isinstance(fld, TableArray):
        inner = _schema(fld.inner)
        one = {k: f.metadata["example"] for k, f in inner.fields.items() if "example" in f.metadata}
        return empty, [one] if one else []
    return example if example is not None else empty, hint if hint is not None else empty


def _merge(a: Any, b: Any, empty: Any) -> Any:
    if isinstance(empty, list):
        return [*(a or []), *(b or [])]
    return {**(a or {}), **(b or {})}


def toml_value(value: Any) -> str:
    """A value written as TOML (strings, numbers, booleans, arrays, inline tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"no TOML for {value!r}")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{toml_key(str(k))} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {type(value).__name__}")


def core_tables() -> list[TableSpec]:
    """The core's own tables, in the order a file usually has them."""
    from .schema import ConfigSchema

    declared = ConfigSchema._declared_fields
    return [TableSpec(name, declared[name], _doc(declared[name])) for name in declared]


def plugin_tables_of(tables: Mapping[str, Any]) -> list[TableSpec]:
    """The loaded plugins' tables (``plugin_tables.collect``), sorted by name for a stable file."""
    return [TableSpec(name, owned.field(), owned.table.doc) for name, owned in sorted(tables.items())]


def example_config(tables: Mapping[str, Any], values: Mapping[str, Any] | None = None) -> str:
    """The example file for the core's tables and ``tables`` (the plugins')."""
    return render([*core_tables(), *plugin_tables_of(tables)], values)


__all__ = ["TableSpec", "core_tables", "example_config", "plugin_tables_of", "render", "toml_value"]

