"""``[memory]``: the one table the memory plugins share (SPEC §9).

Each memory plugin derives from :class:`MemorySettings`, which registers the
same table spec (so the core sees one owner, not a clash) and answers the
``context_policy`` hook from it: whichever memory plugins are loaded, the
context budget is the table's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from exoclaw_hooks import AgentConfig, ConfigContext, ContextPolicy, SettingsTable, hookimpl
from exoclaw_hooks.config import Bool, Int, Section


class MemorySchema(Section):
    episodic_window = Int(minimum=0, metadata={"doc": "Recent turns of the session offered whole.", "example": 5})
    semantic_enabled = Bool(metadata={"doc": "Learn and recall facts (false: the semantic layer is off).", "example": True})
    context_tokens = Int(minimum=1, metadata={
        "doc": "One budget for the whole assembled context, in tokens.", "example": 4000})


@dataclass(frozen=True, slots=True)
class MemoryConfig:
    episodic_window: int = 5
    semantic_enabled: bool = True
    context_tokens: int = 4000


def build_memory(data: Mapping[str, Any], context: ConfigContext) -> MemoryConfig:
    return MemoryConfig(**data)


class MemorySettings:
    """Mixed into every memory plugin: the ``[memory]`` table and the context policy it sets."""

    memory = MemoryConfig()

    @hookimpl
    def register_settings(self, register: Callable[[SettingsTable], None]) -> None:
        register(memory_table(self._set_memory))

    def _set_memory(self, config: MemoryConfig) -> None:
        self.memory = config

    @hookimpl
    def context_policy(self, agent: AgentConfig) -> ContextPolicy:
        return ContextPolicy(self.memory.context_tokens)


def memory_table(apply: Callable[[MemoryConfig], None]) -> SettingsTable:
    return SettingsTable(
        "memory", MemorySchema, apply=apply, build=build_memory,
        doc="The memory plugins' table: what is remembered and how big the context may be.",
    )
