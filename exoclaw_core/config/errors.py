"""Turn marshmallow's nested error dicts into one sentence per problem.

Every problem reads ``<file>: <table> <key>: <what is wrong> (got <value>)``::

    config.toml: [agent] provider: must be one of anthropic, openai, echo (got "antropic")
    config.toml: [gateway] prot: unknown key (did you mean "port"?)
    config.toml: [[plugins]] #2 (name "telegram") timeout_ms: must be a positive integer (got 0)
    config.toml: [agents.work] model: must be a string (got 4)

The walk follows the schema, so it knows a sub-table (``[agent.fallback]``)
from a table of tables (``[agents.work]``) from an array of tables
(``[[plugins]] #2``) from an inline table (``secrets.bot_token``).
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from marshmallow import Schema, fields

from exoclaw_hooks.config import REQUIRED, UNKNOWN, Nested, TableArray

#: keys whose values are never repeated in a message
SECRET_KEYS = frozenset({"token", "api_key"})
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")
_MISSING = object()


def toml_key(key: str) -> str:
    """A key as written in TOML: bare when it can be, else quoted."""
    return key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def table_label(path: tuple[str, ...]) -> str:
    return "[" + ".".join(toml_key(k) for k in path) + "]"


def entry_label(path: tuple[str, ...], index: int, item: Any, label_key: str | None) -> str:
    """``[[plugins]] #2 (name "telegram")``: 1-based, named when the entry has a string name."""
    label = f"[{table_label(path)}] #{index + 1}"
    if label_key and isinstance(item, Mapping) and isinstance(item.get(label_key), str):
        label += f" ({label_key} {show(item[label_key])})"
    return label


def show(value: Any, limit: int = 60) -> str:
    """A value as TOML would write it, shortened."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        if len(text) > limit:
            text = text[: limit - 2] + '…"'
    elif isinstance(value, (int, float)):
        text = repr(value)
    elif isinstance(value, Mapping):
        return "a table"
    elif isinstance(value, (list, tuple)):
        text = "[" + ", ".join(show(v, limit) for v in value) + "]"
        if len(text) > limit:
            text = text[: limit - 2] + "…]"
    else:
        text = str(value)
    return text


def hint(key: str, candidates: list[str]) -> str:
    match = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    return f' (did you mean "{match[0]}"?)' if match else ""


@dataclass
class Reporter:
    """Collects problems for one file; ``flags`` relabels values given on the command line."""

    file: str
    flags: Mapping[tuple[str, ...], str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def add(self, where: str, key: str | None, message: str, value: Any = _MISSING, *, path=()) -> None:
        """One problem; ``where`` is the table label ("" at the top level)."""
        flag = self.flags.get(tuple(path))
        if flag:
            head = flag
        else:
            head = " ".join(p for p in (where, key) if p)
            head = f"{self.file}: {head}" if head else self.file
        got = ""
        if value is not _MISSING and message not in (REQUIRED, UNKNOWN) and key not in SECRET_KEYS:
            got = f" (got {show(value)})"
        self.problems.append(f"{head}: {message}{got}")

    # ----------------------------------------------------------------------

    def walk(self, schema: Schema, errors: Mapping, raw: Any, where: str, path: tuple[str, ...]) -> None:
        """Report ``errors`` of ``schema`` for the table ``raw`` labelled ``where``."""
        raw_map = raw if isinstance(raw, Mapping) else {}
        order = [k for k in raw_map if k in errors] + [k for k in errors if k not in raw_map]
        for key in order:
            err = errors[key]
            if key == "_schema":
                for msg in err:
                    self.add(where, None, msg, raw, path=path)
                continue
            value = raw_map.get(key, _MISSING)
            fld = schema.fields.get(key)
            if fld is None:
                self._unknown(schema, key, value, where, path)
            elif isinstance(err, list):
                for msg in err:
                    self.add(where, toml_key(key), msg, value, path=path + (key,))
            else:
                self._nested(fld, err, value, where, path + (key,))

    def _unknown(self, schema: Schema, key: str, value: Any, where: str, path: tuple[str, ...]) -> None:
        names = list(schema.fields)
        if where or not isinstance(value, (Mapping, list)):
            self.add(where, toml_key(key), UNKNOWN + hint(key, names))
            return
        label = table_label((key,)) if isinstance(value, Mapping) else f"[{table_label((key,))}]"
        match = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
        extra = f" (did you mean {table_label((match[0],))}?)" if match else ""
        self.add(label, None, "unknown table" + extra)

    def _nested(self, fld: fields.Field, err: Mapping, value: Any, where: str, path: tuple[str, ...]) -> None:
        key = toml_key(path[-1])
        if isinstance(fld, fields.Nested):
            self.walk(fld.schema, err, value, table_label(path), path)
        elif isinstance(fld, TableArray):
            inner: Nested = fld.inner  # type: ignore[assignment]
            for index, item_err in err.items():
                item = value[index] if isinstance(value, list) and index < len(value) else None
                label = entry_label(path, index, item, fld.metadata.get("label_key"))
                self.walk(inner.schema, item_err, item, label, path + (str(index),))
        elif isinstance(fld, fields.List):
            for index, msgs in err.items():
                item = value[index] if isinstance(value, list) and index < len(value) else _MISSING
                for msg in msgs:
                    self.add(where, f"{key} #{index + 1}", msg, item, path=path)
        elif isinstance(fld, fields.Dict):
            table = value if isinstance(value, Mapping) else {}
            for name, parts in err.items():
                sub = path + (name,)
                for msg in parts.get("key", []):
                    if isinstance(fld.value_field, fields.Nested):
                        self.add(table_label(sub), None, msg)
                    else:
                        self.add(where, f"{key}.{toml_key(name)}", msg)
                value_err = parts.get("value")
                if not value_err:
                    continue
                item = table.get(name, _MISSING)
                if isinstance(fld.value_field, fields.Nested):
                    self.walk(fld.value_field.schema, value_err, item, table_label(sub), sub)
                else:
                    for msg in value_err:
                        self.add(where, f"{key}.{toml_key(name)}", msg, item, path=sub)
        else:  # pragma: no cover - every container field is handled above
            self.add(where, key, str(err), value, path=path)


__all__ = ["Reporter", "entry_label", "hint", "show", "table_label", "toml_key"]
