"""How many input tokens a request will cost, before it is sent (SPEC §8).

A budget is checked *before* the call, so the input has to be estimated,
and the estimate is meant to be an upper bound whatever the text: an
under-count lets a call through that the budget cannot afford (8,000 CJK
characters estimated at a quarter of their tokens once spent 4.1x a cap).

Everything the provider turns into prompt tokens is counted — the system
prompt (with the recalled memory the core put in it), every message's text,
the tool calls (name, id and JSON input) and tool results of the
conversation, the tool schemas offered — by the one rule the core uses too
(:func:`exoclaw_hooks.count_chars`): characters of scripts that tokenizers
cut finely (CJK, kana, hangul, emoji and other symbols, letters outside the
Latin ranges) count at least one token each; Latin text counts a
characters-per-token *ratio* (4 to start with); each message, tool call,
tool result and tool schema adds a few tokens of framing.

After a call the provider's own count of the prompt (``input_tokens`` +
cache reads + cache writes) is compared with the estimate, per
``provider:model``. Learning may only *tighten*: when the provider counted
more, the Latin ratio goes down to what the call showed (never above the
lowest ratio the model has shown), or — for a prompt mostly of dense
characters — their weight goes up, or — for a short prompt, where the
provider's hidden framing dominates — a fixed per-call overhead grows. A
provider counting fewer tokens teaches nothing: the estimate stays an upper
bound, and the budget is charged the provider's real count anyway.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from exoclaw_hooks import LLMRequest, count_chars

DEFAULT_RATIO = 4.0
MIN_RATIO = 1.0
#: a dense character never counts more than this many tokens
MAX_DENSE_WEIGHT = 4.0
#: framing tokens per message, tool call, tool result and tool schema, and per call
PART_TOKENS = 4
CALL_TOKENS = 3
#: the learnt fixed overhead per call never grows past this
MAX_OVERHEAD = 4000
#: Latin characters a call needs before it may teach the Latin ratio (else framing dominates)
MIN_LEARN_LATIN = 1000
#: dense characters a call needs before it may teach their weight
MIN_LEARN_DENSE = 200


@dataclass(frozen=True, slots=True)
class Sample:
    """What one request was measured as: kept with its reservation to learn from after the call."""

    latin: int = 0
    dense: int = 0
    parts: int = 0

    @property
    def chars(self) -> int:
        return self.latin + self.dense


@dataclass(slots=True)
class ModelRule:
    """What one ``provider:model`` has shown: each only tightens."""

    ratio: float = DEFAULT_RATIO  # Latin characters per token
    dense_weight: float = 1.0  # tokens per dense character
    overhead: int = 0  # learnt hidden tokens per call

    def tokens(self, sample: Sample) -> int:
        latin = math.ceil(sample.latin / self.ratio) if sample.latin else 0
        dense = math.ceil(sample.dense * self.dense_weight)
        return latin + dense + sample.parts * PART_TOKENS + CALL_TOKENS + self.overhead


def _json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        return str(value)


class Estimator:
    """Per-model counting rules, tightened by the providers' counts."""

    def __init__(self, default_ratio: float = DEFAULT_RATIO):
        self.default_ratio = default_ratio
        self._rules: dict[str, ModelRule] = {}
        # the core builds one tools tuple per turn and reuses it for every
        # call of the tool loop: measure its schemas once
        self._tools: tuple[Any, ...] | None = None
        self._tools_sample = (0, 0)

    # ------------------------------------------------------------ measuring

    def measure(self, request: LLMRequest) -> Sample:
        """The characters (Latin, dense) and framed parts of everything ``request`` carries."""
        texts = [request.system]
        parts = len(request.messages)
        for m in request.messages:
            texts.append(m.content)
            for c in m.tool_calls:
                parts += 1
                texts += (c.name, c.id, _json(c.input))
            for r in m.tool_results:
                parts += 1
                texts += (r.content, r.tool_use_id)
        latin, dense = count_chars("".join(texts))  # one pass: plain ASCII is one isascii() check
        tools = request.tools
        if tools:
            if tools is not self._tools:
                self._tools_sample = count_chars("".join(
                    spec.name + spec.description + _json(spec.input_schema) for spec in tools))
                self._tools = tools
            latin += self._tools_sample[0]
            dense += self._tools_sample[1]
            parts += len(tools)
        return Sample(latin, dense, parts)

    def chars(self, request: LLMRequest) -> int:
        """The characters of ``request`` that become prompt tokens."""
        return self.measure(request).chars

    # ------------------------------------------------------------ estimating

    def rule(self, provider: str, model: str) -> ModelRule:
        key = f"{provider}:{model}"
        rule = self._rules.get(key)
        if rule is None:
            rule = self._rules[key] = ModelRule(self.default_ratio)
        return rule

    def ratio(self, provider: str, model: str) -> float:
        """Latin characters per token for ``provider:model``."""
        rule = self._rules.get(f"{provider}:{model}")
        return rule.ratio if rule is not None else self.default_ratio

    def tokens(self, provider: str, model: str, sample: Sample) -> int:
        """Estimated prompt tokens of a measured request sent to ``provider:model`` (an upper bound)."""
        return self.rule(provider, model).tokens(sample)

    def estimate(self, provider: str, model: str, request: LLMRequest) -> tuple[int, Sample]:
        """``(tokens, sample)`` of ``request``: keep ``sample`` to :meth:`learn` after the call."""
        sample = self.measure(request)
        return self.tokens(provider, model, sample), sample

    def learn(self, provider: str, model: str, sample: Sample, prompt_tokens: int) -> None:
        """Tighten the rule of ``provider:model`` when its provider counted more than estimated."""
        if prompt_tokens <= 0:
            return
        rule = self.rule(provider, model)
        excess = prompt_tokens - rule.tokens(sample)
        if excess <= 0:
            return
        framing = sample.parts * PART_TOKENS + CALL_TOKENS + rule.overhead
        if sample.latin >= MIN_LEARN_LATIN and sample.latin >= sample.dense:
            latin_tokens = prompt_tokens - framing - math.ceil(sample.dense * rule.dense_weight)
            if latin_tokens > 0:
                rule.ratio = max(MIN_RATIO, min(rule.ratio, sample.latin / latin_tokens))
        elif sample.dense >= MIN_LEARN_DENSE:
            latin = math.ceil(sample.latin / rule.ratio) if sample.latin else 0
            weight = (prompt_tokens - framing - latin) / sample.dense
            rule.dense_weight = min(MAX_DENSE_WEIGHT, max(rule.dense_weight, weight))
        # what the ratio or weight could not explain (a short prompt, a clamp) is per-call overhead
        left = prompt_tokens - rule.tokens(sample)
        if left > 0:
            rule.overhead = min(MAX_OVERHEAD, rule.overhead + left)


def output_allowance(max_tokens: int) -> int:
    """The output, in counted tokens, reserved for (and allowed to) a call sent with ``max_tokens``.

    Some upstreams ignore ``max_tokens``: the call's ``output_limit`` is this
    allowance, and the core cuts a stream that goes past it (counting by
    :func:`exoclaw_hooks.count_chars`' rule). The margin over ``max_tokens``
    keeps an upstream that honours it from being cut by a count a little
    above its tokenizer's.
    """
    return max_tokens + max_tokens // 4 + 16


def max_tokens_within(allowance: int) -> int:
    """The largest ``max_tokens`` whose :func:`output_allowance` is at most ``allowance`` (0 when none is)."""
    m = max(0, (allowance - 16) * 4 // 5)
    while m > 0 and output_allowance(m) > allowance:
        m -= 1
    while output_allowance(m + 1) <= allowance:
        m += 1
    return m
