"""The example config generated from the declared settings (exoclaw_core/config/example.py)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from marshmallow import fields

from exoclaw_core.cli.config_cmd import example_text
from exoclaw_core.config import plugin_tables
from exoclaw_core.config.example import TableSpec, _is_table_of_tables, _schema, core_tables, plugin_tables_of, \
    render, toml_value
from exoclaw_core.config.schema import CORE_TABLES
from exoclaw_core.config.types import Settings
from exoclaw_core.plugins import make_plugin_manager
from exoclaw_hooks.config import Int, Nested, Section, Str, StrList, Table, TableArray
from tests.harness import parse_config

REPO = Path(__file__).resolve().parents[3]
REGENERATE = "python -m exoclaw_core.cli.main config example --builtin-only > examples/config.toml"


def declared_tables() -> list[TableSpec]:
    pm = make_plugin_manager(Settings())
    return [*core_tables(), *plugin_tables_of(plugin_tables.collect(pm, reserved=CORE_TABLES))]


def test_examples_config_toml_is_exactly_the_generated_example():
    shipped = (REPO / "examples" / "config.toml").read_text()
    assert shipped == example_text(builtin_only=True), f"examples/config.toml is stale: regenerate it with `{REGENERATE}`"


def test_the_generated_example_is_a_valid_config():
    settings, tables = parse_config(example_text(), config_dir=str(REPO / "examples"), env={})
    assert settings.agents["personal"].provider == "echo" and "work" in settings.agents
    assert [p.name for p in tables["plugins"]] == ["echo", "kv", "fetch", "mock", "telegram"]


def test_every_declared_key_is_documented():
    """A key without ``metadata={"doc": ...}`` would be an undocumented line of the example."""
    missing = []

    def walk(path: str, schema) -> None:
        for name, fld in schema.fields.items():
            if fld.metadata.get("skip"):
                continue
            if not fld.metadata.get("doc"):
                missing.append(f"{path}.{name}")
            if isinstance(fld, fields.Nested):
                walk(f"{path}.{name}", _schema(fld))
            elif _is_table_of_tables(fld):
                walk(f"{path}.{name}.*", _schema(fld.value_field))

    for table in declared_tables():
        if not table.doc:
            missing.append(f"[{table.name}] (the table's own doc)")
        fld = table.field
        if isinstance(fld, TableArray):
            walk(table.name, _schema(fld.inner))
        elif _is_table_of_tables(fld):
            walk(f"{table.name}.*", _schema(fld.value_field))
        elif isinstance(fld, fields.Nested):
            walk(table.name, _schema(fld))
    assert missing == []


class Entry(Section):
    name = Str(required=True, metadata={"doc": "Its name.", "example": "a"})
    size = Int(metadata={"doc": "How big."})


class Sub(Section):
    level = Int(required=True, metadata={"doc": "Required here.", "example": 3})


class Thing(Section):
    title = Str(metadata={"doc": "A title.", "example": 'say "hi"\nthen — go'})
    secret = Str(metadata={"doc": "Left out.", "hint": "s3cr3t"})
    count = Int(metadata={"doc": "No example."})
    tags = StrList(metadata={"doc": "Tags.", "example": ["x", "y"]})
    extra = Table(metadata={"doc": "Free-form.", "example": {"k": 1.5, "on": True}})
    sub = Nested(Sub, metadata={"doc": "Shown, not configured."})
    named = Table(Nested(Entry), metadata={"doc": "By name.", "example": {"first one": {"name": "n", "size": 2}}})


TABLES = [
    TableSpec("thing", Nested(Thing), "A thing."),
    TableSpec("items", TableArray(Entry, metadata={"hint": [{"name": "b"}]}), "Items."),
]


def test_rendering_of_each_kind_of_key():
    text = render(TABLES, header="test")
    assert "# A title.\ntitle = \"say \\\"hi\\\"\\nthen — go\"\n" in text
    assert "# Left out.\n# secret = \"s3cr3t\"\n" in text
    assert "# No example.\n# count = <integer>\n" in text
    assert "# Shown, not configured.\n# [thing.sub]\n# Required here.\n# level = 3\n" in text
    assert '[thing.named."first one"]\nname = "n"\nsize = 2\n' in text
    assert "# Keys:\n#   name  Its name.\n#   size  How big.\n\n# [[items]]\n# name = \"b\"\n" in text
    assert tomllib.loads(text) == {"thing": {
        "title": 'say "hi"\nthen — go', "tags": ["x", "y"], "extra": {"k": 1.5, "on": True},
        "named": {"first one": {"name": "n", "size": 2}},
    }}


def test_init_mode_writes_only_the_chosen_values_active():
    values = {"thing": {"count": 7, "sub": {"level": 1}}, "items": [{"name": "mine", "size": 1}]}
    text = render(TABLES, values, header="test")
    assert tomllib.loads(text) == values
    # the examples are still there to read, commented
    assert '# title = "say' in text and '# [thing.named."first one"]' in text and '# [[items]]\n# name = "b"' in text


def test_init_mode_on_the_real_tables_parses_to_the_values():
    values = {"agent": {"provider": "openai", "model": "gpt-4o-mini"},
              "plugins": [{"name": "echo", "path": "/abs/echo.wasm"}]}
    text = render(declared_tables(), values)
    assert tomllib.loads(text) == values


@pytest.mark.parametrize("value", ["plain", "quote \" and \\ backslash", "tab\tnew\nline", "ünïcødé ✓", "",
                                   0, -5, 2.5, 1e-7, True, False, [], ["a", 1], {"a b": {"c": [1.0]}}])
def test_toml_values_round_trip(value):
    assert tomllib.loads(f"k = {toml_value(value)}")["k"] == value
