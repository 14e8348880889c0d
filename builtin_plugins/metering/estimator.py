"""How many input tokens a request will cost, before it is sent (SPEC §8).

A budget is checked *before* the call, so the input has to be estimated.
The estimate is the request's characters divided by a characters-per-token
ratio: every character the provider will turn into prompt tokens counts —
the system prompt, every message's text, the tool calls (name and JSON
input) and tool results of the conversation, and the tool schemas offered.

The ratio starts at 4 (a fair guess for English with the GPT and Claude
tokenizers) and is learnt per ``provider:model``: after each call the
provider's own count of the prompt (``input_tokens`` + cache reads + cache
writes: the whole prompt, however it was billed) gives the observed ratio
for the characters estimated for that call, and an exponential moving
average pulls the model's ratio toward it. The ratio is bounded (1 to 8
characters per token) so one odd call (an empty prompt, an image, a
provider that reports nothing) cannot make later estimates absurd.
"""

from __future__ import annotations

import json
import math
from typing import Any

from exoclaw_hooks import LLMRequest

DEFAULT_RATIO = 4.0
MIN_RATIO = 1.0
MAX_RATIO = 8.0
#: weight of the newest observation in the moving average
ALPHA = 0.3
#: prompts shorter than this teach nothing (fixed overheads dominate)
MIN_LEARN_CHARS = 16


def _json_len(value: Any) -> int:
    try:
        return len(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str))
    except (TypeError, ValueError):
        return len(str(value))


class Estimator:
    """A per-model characters-per-token ratio, learnt from the providers' counts."""

    def __init__(self, default_ratio: float = DEFAULT_RATIO, alpha: float = ALPHA):
        self.default_ratio = default_ratio
        self.alpha = alpha
        self._ratios: dict[str, float] = {}
        # the core builds one tools tuple per turn and reuses it for every
        # call of the tool loop: measure its schemas once
        self._tools: tuple[Any, ...] | None = None
        self._tools_chars = 0

    # ------------------------------------------------------------ measuring

    def chars(self, request: LLMRequest) -> int:
        """The characters of ``request`` that become prompt tokens."""
        total = len(request.system)
        for m in request.messages:
            total += len(m.content)
            for c in m.tool_calls:
                total += len(c.name) + len(c.id) + _json_len(c.input)
            for r in m.tool_results:
                total += len(r.content) + len(r.tool_use_id)
        tools = request.tools
        if tools:
            if tools is not self._tools:
                self._tools_chars = sum(
                    len(t.name) + len(t.description) + _json_len(t.input_schema) for t in tools
                )
                self._tools = tools
            total += self._tools_chars
        return total

    # ------------------------------------------------------------ estimating

    def ratio(self, provider: str, model: str) -> float:
        """Characters per token for ``provider:model`` (the default until it learnt)."""
        return self._ratios.get(f"{provider}:{model}", self.default_ratio)

    def tokens(self, provider: str, model: str, chars: int) -> int:
        """Estimated tokens of ``chars`` characters sent to ``provider:model`` (rounded up)."""
        if chars <= 0:
            return 0
        return math.ceil(chars / self.ratio(provider, model))

    def estimate(self, provider: str, model: str, request: LLMRequest) -> tuple[int, int]:
        """``(tokens, chars)`` of ``request``: keep ``chars`` to :meth:`learn` after the call."""
        chars = self.chars(request)
        return self.tokens(provider, model, chars), chars

    def learn(self, provider: str, model: str, chars: int, prompt_tokens: int) -> None:
        """Correct the ratio of ``provider:model`` with one call's reported prompt size."""
        if chars < MIN_LEARN_CHARS or prompt_tokens <= 0:
            return
        observed = min(MAX_RATIO, max(MIN_RATIO, chars / prompt_tokens))
        key = f"{provider}:{model}"
        current = self._ratios.get(key, self.default_ratio)
        updated = current + self.alpha * (observed - current)
        self._ratios[key] = min(MAX_RATIO, max(MIN_RATIO, updated))
