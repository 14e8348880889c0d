"""Is a valid configuration also ready to answer? Keys, tools and plugins.

The config schema checks each value; this checks what a value refers to:
that each agent's provider (and fallback) has its API key, that every tool
an agent names is offered by a loaded plugin, and that every plugin the file
configures actually loaded. ``exoclaw config check`` reports all of it as
problems (exit 1); ``exoclaw serve`` warns at start and serves anyway.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, replace
from typing import Any, Mapping

from exoclaw_hooks import AgentConfig, ProviderInfo

from . import hookcall
from .config.errors import show, table_label
from .config.types import Settings


def agent_table(settings: Settings, agent_id: str) -> str:
    """Where an agent is configured: ``[agent]`` for the default one, else ``[agents.ID]``."""
    return "[agent]" if agent_id == settings.default_agent else table_label(("agents", agent_id))


@dataclass(frozen=True, slots=True)
class MissingKey:
    """An agent (or its fallback) whose provider needs a key that is not set."""

    agent_id: str
    table: str  # "[agent]", "[agents.work]", "[agent.fallback]"
    provider: str
    key_env: str

    def problem(self) -> str:
        return (f"{self.table} provider: {show(self.provider)} needs an API key: set ${self.key_env} "
                f"or api_key in {self.table} (neither is set)")

    def warning(self) -> str:
        which = "its fallback" if self.table.endswith(".fallback]") else "its turns"
        return (f"agent {self.agent_id} has no API key for {self.provider}: set ${self.key_env} "
                f"(or api_key in {self.table}); {which} will fail")


def missing_keys(settings: Settings, providers: Mapping[str, ProviderInfo]) -> list[MissingKey]:
    """Agents and fallbacks whose provider registered a key variable, with no key from the file or the environment."""
    missing = []
    for agent in settings.agents.values():
        table = agent_table(settings, agent.id)
        candidates = [(table, agent.provider, agent.api_key)]
        if agent.fallback is not None:
            candidates.append((table[:-1] + ".fallback]", agent.fallback.provider, agent.fallback.api_key))
        for where, provider, key in candidates:
            info = providers.get(provider)
            if info is not None and info.key_env and not key:
                missing.append(MissingKey(agent.id, where, provider, info.key_env))
    return missing


async def unknown_tools(rt: Any) -> list[str]:
    """Problems for tool names an agent lists that no loaded plugin offers (``rt`` started)."""
    problems = []
    for agent in rt.agents.values():
        if not agent.tools:
            continue
        offered = await _offered(rt, replace(agent, tools=tuple(agent.tools)))
        for name in agent.tools:
            if name not in offered:
                everything = await _offered(rt, replace(agent, tools=None))
                near = difflib.get_close_matches(name, sorted(everything), n=1, cutoff=0.6)
                hint = f'did you mean "{near[0]}"? ' if near else ""
                known = ", ".join(sorted(everything)) or "none"
                problems.append(f"{agent_table(rt.settings, agent.id)} tools: unknown tool {show(name)} "
                                f"({hint}tools offered by the loaded plugins: {known})")
    return problems


async def _offered(rt: Any, agent: AgentConfig) -> set[str]:
    specs = await hookcall.call_all(rt.pm, "list_tools", agent=agent)
    names: set[str] = set()
    for result in specs:
        for spec in result if isinstance(result, (list, tuple)) else [result]:
            name = getattr(spec, "name", None)
            if isinstance(name, str):
                names.add(name)
    return names


def plugins_not_loaded(rt: Any) -> list[str]:
    """Problems for configured plugins that did not load (a missing or broken .wasm file …)."""
    return [
        f"plugin {show(p.get('name'))} did not load: {p.get('reason') or 'no reason given'}"
        for p in rt.plugin_report()
        if not p.get("loaded")
    ]


async def problems(rt: Any) -> list[str]:
    """Everything that keeps a started runtime's configuration from answering, as located sentences."""
    label = rt.settings.label
    found = [m.problem() for m in missing_keys(rt.settings, rt.providers)]
    found += await unknown_tools(rt)
    found += plugins_not_loaded(rt)
    return [f"{label}: {p}" for p in found]
