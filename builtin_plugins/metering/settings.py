"""The metering plugin's own tables: ``[budgets]`` and ``[pricing."provider:model"]`` (SPEC §3, §8)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from marshmallow import ValidationError

from exoclaw_hooks import ConfigContext, ConfigError
from exoclaw_hooks.config import Int, Nested, Num, Section, Table

_PRICING_KEY = re.compile(r"[A-Za-z0-9_.-]+:\S+\Z")


@dataclass(frozen=True, slots=True)
class BudgetLimits:
    """Tokens (input + output) per scope; ``None`` = unlimited."""

    session: int | None = None
    daily: int | None = None
    monthly: int | None = None


@dataclass(frozen=True, slots=True)
class BudgetsConfig:
    session: int | None = None
    daily: int | None = None
    monthly: int | None = None
    agents: Mapping[str, BudgetLimits] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None


def pricing_key(value: str) -> None:
    if not _PRICING_KEY.match(value):
        raise ValidationError('table name must look like "provider:model", e.g. "openai:gpt-4o"')


class BudgetLimitsSchema(Section):
    """Tokens (input + output); absent = unlimited."""

    session = Int(minimum=0, metadata={"doc": "Tokens one session may use in its whole life.", "example": 50000})
    daily = Int(minimum=0, metadata={"doc": "Tokens per UTC day, all sessions together.", "example": 500000})
    monthly = Int(minimum=0, metadata={"doc": "Tokens per UTC calendar month.", "example": 5000000})


class BudgetsSchema(BudgetLimitsSchema):
    agents = Table(Nested(BudgetLimitsSchema), metadata={
        "doc": "Per-agent limits ([budgets.agents.ID], same keys), counted over all that agent's sessions.",
        "list_keys": False, "example": {"work": {"daily": 100000}}})


class PriceSchema(Section):
    """USD per million tokens."""

    input = Num(required=True, metadata={"doc": "USD per million input tokens (required).", "example": 3.0})
    output = Num(required=True, metadata={"doc": "USD per million output tokens (required).", "example": 15.0})
    cache_read = Num(metadata={"doc": "USD per million cache-read tokens (default: the input price)."})
    cache_write = Num(metadata={"doc": "USD per million cache-write tokens (default: the input price)."})


PRICING = Table(Nested(PriceSchema), key_validate=pricing_key, metadata={
    "example": {
        "anthropic:claude-sonnet-4-5": {"input": 3.0, "output": 15.0, "cache_read": 0.3, "cache_write": 3.75},
        "openai:gpt-4o-mini": {"input": 0.15, "output": 0.6},
    },
    "hint": {"openai:my-local-model": {"input": 0.0, "output": 0.0}},
})


def build_budgets(data: Mapping[str, Any], context: ConfigContext) -> BudgetsConfig:
    unknown = [name for name in data.get("agents", {}) if name not in context.agents]
    if unknown:
        known = ", ".join(context.agents)
        raise ConfigError([f'[budgets.agents.{name}]: unknown agent, must be one of {known} (got "{name}")'
                           for name in unknown])
    per_agent = {name: BudgetLimits(**limits) for name, limits in data.get("agents", {}).items()}
    return BudgetsConfig(agents=per_agent, **{k: data[k] for k in ("session", "daily", "monthly") if k in data})


def build_pricing(data: Mapping[str, Any], context: ConfigContext) -> dict[str, Price]:
    return {key: Price(**price) for key, price in data.items()}
