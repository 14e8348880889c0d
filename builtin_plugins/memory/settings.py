"""``[memory]``: the one table the memory plugins share (SPEC §9).

Each memory plugin derives from :class:`MemorySettings`, which registers the
same table spec (so the core sees one owner, not a clash) and answers the
``context_policy`` hook from it: whichever memory plugins are loaded, the
context budget is the table's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from marshmallow import validate

from exoclaw_hooks import AgentConfig, ConfigContext, ContextPolicy, SettingsTable, hookimpl
from exoclaw_hooks.config import Bool, Int, Num, Section, Str, Table

EXTRACTORS = ("rules", "llm", "off")


class MemorySchema(Section):
    episodic_window = Int(minimum=0, metadata={"doc": "Recent turns of the session offered whole.", "example": 5})
    semantic_enabled = Bool(metadata={"doc": "Learn and recall facts (false: the semantic layer is off).", "example": True})
    context_tokens = Int(minimum=1, metadata={
        "doc": "One budget for the whole assembled context, in tokens.", "example": 4000})
    shares = Table(Num(), metadata={
        "doc": 'How what the fixed parts leave of context_tokens is shared: "turn" (the recent window), '
               '"recall" (earlier messages), "fact", or "*" (a section of another kind). Unused shares flow '
               "to the others.", "example": {"recall": 0.6, "turn": 0.25, "fact": 0.15}})
    recall_hits = Int(minimum=0, metadata={"doc": "Earlier messages a search brings back (0: no recall).",
                                           "example": 100})
    recall_neighbours = Int(minimum=0, maximum=5, metadata={
        "doc": "Messages said just before and after a hit that come with it.", "example": 2})
    recall_expand = Int(minimum=0, metadata={"doc": "The best hits whose neighbours come with them.", "example": 50})
    recall_neighbour_weight = Num(metadata={
        "doc": "A neighbour's rank, as a share of its hit's (0 to 1).", "example": 0.5})
    extractor = Str(validate=validate.OneOf(EXTRACTORS, error="must be one of rules, llm, off"), metadata={
        "doc": "How facts are learned: rules (offline), llm (after the turn, batched, metered as kind "
               '"memory"), off. Default: llm with a real provider, rules with the offline echo.',
        "example": "rules"})
    llm_batch_turns = Int(minimum=1, metadata={"doc": "llm extractor: turns learned from in one call.", "example": 5})
    llm_idle_s = Num(positive=True, metadata={
        "doc": "llm extractor: seconds of quiet after which a smaller batch is learned anyway.", "example": 30})
    llm_provider = Str(metadata={"doc": "llm extractor: another provider than the agent's (its key from the environment)."})
    llm_model = Str(metadata={"doc": 'llm extractor: another model, e.g. a cheaper one ("claude-haiku-4-5").'})


#: how the budget is shared when [memory] shares says nothing (tuned on LoCoMo's development split)
DEFAULT_SHARES = {"recall": 0.6, "turn": 0.25, "fact": 0.15, "*": 0.1}


@dataclass(frozen=True, slots=True)
class MemoryConfig:
    episodic_window: int = 5
    semantic_enabled: bool = True
    context_tokens: int = 4000
    shares: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_SHARES))
    recall_hits: int = 100
    #: hits whose neighbours come with them, and how many on each side, at what share of the hit's rank
    recall_expand: int = 50
    recall_neighbours: int = 2
    recall_neighbour_weight: float = 0.5
    #: None: llm for an agent with a real provider, rules for the offline echo
    extractor: str | None = None
    llm_batch_turns: int = 5
    llm_idle_s: float = 30.0
    llm_provider: str | None = None
    llm_model: str | None = None

    def extractor_for(self, agent: AgentConfig) -> str:
        """``rules``, ``llm`` or ``off`` for this agent's turns."""
        if not self.semantic_enabled:
            return "off"
        if self.extractor is not None:
            return self.extractor
        return "rules" if agent.provider == "echo" else "llm"


def build_memory(data: Mapping[str, Any], context: ConfigContext) -> MemoryConfig:
    data = dict(data)
    if "llm_idle_s" in data:
        data["llm_idle_s"] = float(data["llm_idle_s"])
    if "recall_neighbour_weight" in data:
        data["recall_neighbour_weight"] = float(data["recall_neighbour_weight"])
    if "shares" in data:
        data["shares"] = {**DEFAULT_SHARES, **{k: float(v) for k, v in data["shares"].items()}}
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
        return ContextPolicy(self.memory.context_tokens, self.memory.shares)


def memory_table(apply: Callable[[MemoryConfig], None]) -> SettingsTable:
    return SettingsTable(
        "memory", MemorySchema, apply=apply, build=build_memory,
        doc="The memory plugins' table: what is remembered and how big the context may be.",
    )
