"""Plugins own their configuration: the table a plugin declares, and what it gets to build it.

A plugin declares each TOML table it owns from its ``register_settings``
hook::

    from exoclaw_hooks import SettingsTable, hookimpl
    from exoclaw_hooks.config import Int, Section, Str

    class AuditSettings(Section):
        path = Str(required=True, metadata={"doc": "Where the audit log goes."})
        keep_days = Int(minimum=1, metadata={"doc": "Days kept.", "example": 30})

    class AuditPlugin:
        @hookimpl
        def register_settings(self, register):
            register(SettingsTable("audit", AuditSettings, apply=self.configure))

        def configure(self, section):  # the validated [audit] table, a dict
            self.path = section.get("path")

The core validates the table with the same located messages as its own
(``config.toml: [audit] keep_days: must be a positive integer (got 0)``),
unknown keys included, then calls ``apply`` with the result — only that
table, never the whole file. Two plugins claiming one table with different
schemas is a start-up error naming both; the plugins of one package may
share a table by registering the very same ``spec`` object.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

if TYPE_CHECKING:
    from ._config import AgentConfig


@dataclass(frozen=True, slots=True)
class SettingsTable:
    """A top-level TOML table a plugin owns.

    :param name: the table's key, e.g. ``"audit"`` for ``[audit]`` (for an
        array of tables ``[[name]]``, give a ``TableArray`` as ``spec``).
    :param spec: a marshmallow ``Schema`` subclass for a plain table (derive
        it from :class:`exoclaw_hooks.config.Section`), or a field instance for
        another shape (``TableArray(EntrySchema, label_key="name")``,
        ``Table(Nested(PriceSchema))`` …).
    :param apply: called once at start-up with the section: ``build``'s
        result, or the validated data (``{}`` / ``[]`` when the file has no
        such table, so the plugin always hears its defaults).
    :param build: optional ``build(data, context)`` turning the validated data
        into the plugin's own config object; it may look at the environment,
        the agents and the config file's directory through
        :class:`ConfigContext`, and raises :class:`ConfigError` with problems
        written ``"key: what is wrong"`` for checks across keys. For an array
        of tables it may also be called, by ``exoclaw config check``, with the
        entries that failed validation replaced by ``None`` (so that every
        problem is reported at once): skip those.
    :param doc: one or two sentences shown above the table in the generated
        example config (``exoclaw config schema``).
    """

    name: str
    spec: Any
    apply: Callable[[Any], None]
    build: Callable[[Any, "ConfigContext"], Any] | None = None
    doc: str = ""


def expand_user(path: str, env: Mapping[str, str]) -> str:
    """``~`` → ``$HOME`` taken from ``env`` (so tests never see the real home)."""
    if path == "~" or path.startswith("~/") or path.startswith("~" + os.sep):
        home = env.get("HOME") or str(Path.home())
        return home + path[1:]
    return os.path.expanduser(path)


@dataclass(frozen=True, slots=True)
class ConfigContext:
    """What a settings ``build`` may look at besides its own table."""

    #: the environment the gateway runs with (secrets are read from it by name)
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    #: directory of the config file: relative paths resolve against it
    config_dir: str = "."
    #: the data directory (``$EXOCLAW_HOME``)
    data_dir: str = "~/.exoclaw"
    #: the configured agents by id (their API keys are not included)
    agents: Mapping[str, "AgentConfig"] = field(default_factory=dict)
    default_agent: str = "default"

    def resolve_path(self, path: str) -> str:
        """Expand ``~``; a relative path is taken from the config file's directory."""
        path = expand_user(path, self.env)
        if not os.path.isabs(path):
            path = os.path.join(self.config_dir, path)
        return os.path.normpath(path)
