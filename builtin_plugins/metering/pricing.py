"""Prices in USD per million tokens, keyed ``provider:model`` (SPEC §8).

Lookup order for a call served by ``provider``/``model``:

1. ``[pricing."provider:model"]`` from the config, then the built-in table;
2. the same for the model's base id when it carries a date or ``-latest``
   (``claude-sonnet-4-5-20250929`` and ``gpt-4o-2024-08-06`` take the price
   of ``claude-sonnet-4-5`` and ``gpt-4o``);
3. ``provider:*`` (the offline ``echo`` provider is free, not unpriced).

No match → the model is *unpriced*: its calls cost 0 and their records say
``priced = false``.

How providers report cached tokens (the convention of ``exoclaw_hooks.Usage``
that the builtin providers follow, see their module docstrings):
``input_tokens`` is the *uncached* input only; cache reads and cache writes
are counted apart in ``cache_read_tokens`` / ``cache_write_tokens``.
Anthropic reports it that way natively (``input_tokens``,
``cache_read_input_tokens``, ``cache_creation_input_tokens``). OpenAI's
``prompt_tokens`` *includes* ``prompt_tokens_details.cached_tokens``; the
OpenAI provider plugin subtracts them before handing ``Usage`` over, so the
three counts never overlap and one formula prices every provider::

    cost = (input * in + output * out + cache_read * cr + cache_write * cw) / 1e6

with ``cr`` / ``cw`` defaulting to the input price when the table has none.
"""

from __future__ import annotations

import re
from typing import Mapping

from exoclaw_hooks import Usage

from .settings import Price

#: The table's date: when its figures were last checked against the providers' price pages.
PRICES_AS_OF = "2026-12-04"

#: USD per million tokens. Cache prices: Anthropic reads 0.1x (Opus 5.5, Sonnet 5.5: 0.05x;
#: Fable 5.1: 0.025x) and 5-minute writes 1.25x the input price; OpenAI discounts cached
#: input and does not charge (nor report) cache writes. Models priced by prompt length
#: (Haiku 5.5 past 100K tokens, GPT-6 past 272K) are at their short-prompt rate here: give
#: them a [pricing] entry at the long rate if your prompts are that long.
BUILTIN_PRICES: dict[str, Price] = {
    # Anthropic: current
    "anthropic:claude-fable-5-1": Price(10.0, 50.0, 0.25, 12.50),
    "anthropic:claude-opus-5-5": Price(4.0, 20.0, 0.20, 5.0),
    "anthropic:claude-sonnet-5-5": Price(2.0, 10.0, 0.10, 2.50),
    "anthropic:claude-haiku-5-5": Price(0.10, 0.50, 0.01, 0.125),
    # Anthropic: legacy, still served
    "anthropic:claude-fable-5": Price(10.0, 50.0, 1.0, 12.50),
    "anthropic:claude-opus-5": Price(5.0, 25.0, 0.50, 6.25),
    "anthropic:claude-sonnet-5": Price(2.0, 10.0, 0.20, 2.50),
    "anthropic:claude-opus-4-8": Price(5.0, 25.0, 0.50, 6.25),
    "anthropic:claude-opus-4-7": Price(5.0, 25.0, 0.50, 6.25),
    "anthropic:claude-opus-4-6": Price(5.0, 25.0, 0.50, 6.25),
    "anthropic:claude-opus-4-5": Price(5.0, 25.0, 0.50, 6.25),
    "anthropic:claude-opus-4-1": Price(15.0, 75.0, 1.50, 18.75),
    "anthropic:claude-opus-4": Price(15.0, 75.0, 1.50, 18.75),
    "anthropic:claude-3-opus": Price(15.0, 75.0, 1.50, 18.75),
    "anthropic:claude-sonnet-4-5": Price(3.0, 15.0, 0.30, 3.75),
    "anthropic:claude-sonnet-4": Price(3.0, 15.0, 0.30, 3.75),
    "anthropic:claude-3-7-sonnet": Price(3.0, 15.0, 0.30, 3.75),
    "anthropic:claude-3-5-sonnet": Price(3.0, 15.0, 0.30, 3.75),
    "anthropic:claude-haiku-4-5": Price(1.0, 5.0, 0.10, 1.25),
    "anthropic:claude-3-5-haiku": Price(0.80, 4.0, 0.08, 1.0),
    "anthropic:claude-3-haiku": Price(0.25, 1.25, 0.03, 0.30),
    # OpenAI: current
    "openai:gpt-6-astra": Price(10.0, 50.0, 1.0),
    "openai:gpt-6-sol": Price(2.0, 10.0, 0.20),
    "openai:gpt-6-luna": Price(0.10, 0.50, 0.01),
    "openai:gpt-5.5": Price(5.0, 30.0, 0.50),
    "openai:gpt-5.4": Price(2.50, 15.0, 0.25),
    "openai:gpt-5.4-mini": Price(0.75, 4.50, 0.075),
    # OpenAI: earlier
    "openai:gpt-5": Price(1.25, 10.0, 0.125),
    "openai:gpt-5-mini": Price(0.25, 2.0, 0.025),
    "openai:gpt-5-nano": Price(0.05, 0.40, 0.005),
    "openai:gpt-4o": Price(2.50, 10.0, 1.25),
    "openai:gpt-4o-mini": Price(0.15, 0.60, 0.075),
    "openai:gpt-4.1": Price(2.0, 8.0, 0.50),
    "openai:gpt-4.1-mini": Price(0.40, 1.60, 0.10),
    "openai:gpt-4.1-nano": Price(0.10, 0.40, 0.025),
    # the offline provider costs nothing (and is not "unpriced")
    "echo:*": Price(0.0, 0.0),
}

#: a trailing snapshot date (``-20250929``, ``-2024-08-06``) or ``-latest``
_DATED = re.compile(r"-(?:\d{8}|\d{4}-\d{2}-\d{2}|latest)$")


def base_model(model: str) -> str:
    """``claude-sonnet-4-5-20250929`` → ``claude-sonnet-4-5``; other ids unchanged."""
    return _DATED.sub("", model)


def call_cost(price: Price, usage: Usage) -> float:
    """USD for one call's ``usage`` at ``price`` (see the module docstring for the convention)."""
    cache_read = price.input if price.cache_read is None else price.cache_read
    cache_write = price.input if price.cache_write is None else price.cache_write
    return (
        usage.input_tokens * price.input
        + usage.output_tokens * price.output
        + usage.cache_read_tokens * cache_read
        + usage.cache_write_tokens * cache_write
    ) / 1_000_000


class PriceTable:
    """The built-in prices with one gateway's ``[pricing]`` overrides on top."""

    def __init__(self, overrides: Mapping[str, Price] | None = None, builtin: Mapping[str, Price] = BUILTIN_PRICES):
        self._overrides = dict(overrides or {})
        self._builtin = builtin
        self._cache: dict[tuple[str, str], Price | None] = {}

    def lookup(self, provider: str, model: str) -> Price | None:
        """The price of ``provider:model``, or ``None`` when it is unpriced."""
        key = (provider, model)
        try:
            return self._cache[key]
        except KeyError:
            pass
        candidates = [f"{provider}:{model}"]
        base = base_model(model)
        if base != model:
            candidates.append(f"{provider}:{base}")
        candidates.append(f"{provider}:*")
        price = None
        for name in candidates:
            price = self._overrides.get(name) or self._builtin.get(name)
            if price is not None:
                break
        if len(self._cache) < 4096:  # model ids come from config and fallbacks: few
            self._cache[key] = price
        return price

    def cost(self, provider: str, model: str, usage: Usage) -> tuple[float, bool]:
        """``(cost_usd, priced)`` of one call; an unpriced model costs 0."""
        price = self.lookup(provider, model)
        if price is None:
            return 0.0, False
        return call_cost(price, usage), True
