"""The metering plugin's own tables: ``[budgets]`` and ``[pricing."provider:model"]`` (SPEC §3, §8).

A dollar cap on a model without a price would never refuse anything, so it
is a config error (located at the cap, naming the model and how to price
it); :func:`unpriced_dollar_caps` finds them once both tables are built.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from marshmallow import ValidationError

from exoclaw_hooks import ConfigContext, ConfigError
from exoclaw_hooks.config import Int, Nested, Num, Section, Table

_PRICING_KEY = re.compile(r"[A-Za-z0-9_.-]+:\S+\Z")


#: the limits of a scope, in check order: tokens (input + output) then USD
LIMIT_KEYS = ("session", "daily", "monthly", "session_usd", "daily_usd", "monthly_usd")
DOLLAR_KEYS = ("session_usd", "daily_usd", "monthly_usd")


@dataclass(frozen=True, slots=True)
class BudgetLimits:
    """Tokens (input + output) and USD per scope; ``None`` = unlimited."""

    session: int | None = None
    daily: int | None = None
    monthly: int | None = None
    session_usd: float | None = None
    daily_usd: float | None = None
    monthly_usd: float | None = None

    def has_dollars(self) -> bool:
        return any(getattr(self, k) is not None for k in DOLLAR_KEYS)


@dataclass(frozen=True, slots=True)
class BudgetsConfig:
    session: int | None = None
    daily: int | None = None
    monthly: int | None = None
    session_usd: float | None = None
    daily_usd: float | None = None
    monthly_usd: float | None = None
    agents: Mapping[str, BudgetLimits] = field(default_factory=dict)
    #: every person's own limits (a person: the channel + account a message comes from)
    person: BudgetLimits | None = None
    #: a ``budget.warning`` once per scope and period past this share of a limit; None: no warnings
    warn_at: float | None = None

    def has_dollars(self) -> bool:
        return (
            any(getattr(self, k) is not None for k in DOLLAR_KEYS)
            or any(limits.has_dollars() for limits in self.agents.values())
            or (self.person is not None and self.person.has_dollars())
        )


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


class Share(Num):
    """A share of a limit: a number in (0, 1]."""

    def __init__(self, **kwargs: Any):
        super().__init__(positive=True, **kwargs)
        self.error_messages["invalid"] = "must be a number greater than 0 and at most 1"

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        if value > 1:
            raise self.make_error("invalid")
        return value


class BudgetLimitsSchema(Section):
    """Tokens (input + output) and USD; absent = unlimited."""

    session = Int(minimum=0, metadata={"doc": "Tokens one session may use in its whole life.", "example": 50000})
    daily = Int(minimum=0, metadata={"doc": "Tokens per UTC day, all sessions together.", "example": 500000})
    monthly = Int(minimum=0, metadata={"doc": "Tokens per UTC calendar month.", "example": 5000000})
    session_usd = Num(metadata={"doc": "USD one session may spend in its whole life."})
    daily_usd = Num(metadata={"doc": "USD per UTC day (each call's worst case priced before it is made).",
                              "example": 5.0})
    monthly_usd = Num(metadata={"doc": "USD per UTC calendar month."})


class PersonLimitsSchema(BudgetLimitsSchema):
    """Each person's own limits: the same keys, counted over one person's calls."""

    session = Int(minimum=0, metadata={"doc": "Tokens one of the person's sessions may use in its whole life."})
    daily = Int(minimum=0, metadata={"doc": "Tokens per UTC day, all the person's sessions together."})
    monthly = Int(minimum=0, metadata={"doc": "Tokens per UTC calendar month."})
    daily_usd = Num(metadata={"doc": "USD per UTC day.", "example": 1.0})


class BudgetsSchema(BudgetLimitsSchema):
    warn_at = Share(metadata={
        "doc": "A budget.warning event (and log line, metric) the first time a scope passes this share "
               "of its limit in a period; absent = no warnings.", "example": 0.8})
    agents = Table(Nested(BudgetLimitsSchema), metadata={
        "doc": "Per-agent limits ([budgets.agents.ID], same keys), counted over all that agent's sessions.",
        "list_keys": False, "example": {"work": {"daily": 100000}}})
    person = Nested(PersonLimitsSchema, metadata={
        "doc": "Each person's own limits (same keys): a person is the channel + account a message comes "
               "from (the OpenAI face's user), counted over all their sessions and agents."})


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
    person = BudgetLimits(**data["person"]) if data.get("person") else None
    return BudgetsConfig(
        agents=per_agent, person=person, warn_at=data.get("warn_at"),
        **{k: data[k] for k in LIMIT_KEYS if k in data},
    )


def unpriced_dollar_caps(config: BudgetsConfig, agents: Mapping[str, Any], priced: Any) -> list[str]:
    """A problem per dollar cap that a model its calls may use has no price for (``priced(provider, model)``)."""
    problems: list[str] = []
    for agent_id, agent in agents.items():
        if not agent.provider:  # ``config check``'s stand-in agents: checked when the gateway starts
            continue
        caps = [k for k in DOLLAR_KEYS if getattr(config, k) is not None]
        where = "[budgets]"
        own = config.agents.get(agent_id)
        if not caps and own is not None and own.has_dollars():
            caps, where = [k for k in DOLLAR_KEYS if getattr(own, k) is not None], f"[budgets.agents.{agent_id}]"
        if not caps and config.person is not None and config.person.has_dollars():
            caps, where = [k for k in DOLLAR_KEYS if getattr(config.person, k) is not None], "[budgets.person]"
        if not caps:
            continue
        targets = [(agent.provider, agent.model)]
        if agent.fallback is not None:
            targets.append((agent.fallback.provider, agent.fallback.model))
        for provider, model in targets:
            if not priced(provider, model):
                problems.append(
                    f'{where} {caps[0]}: no price for "{provider}:{model}" (agent {agent_id}), so no call of it '
                    f'would ever be refused; price it with [pricing."{provider}:{model}"] '
                    f'(input = 0.0, output = 0.0 for a free local model)'
                )
    return problems


def build_pricing(data: Mapping[str, Any], context: ConfigContext) -> dict[str, Price]:
    return {key: Price(**price) for key, price in data.items()}
