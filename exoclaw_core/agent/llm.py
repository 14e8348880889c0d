"""Calling a provider: bounded retries before any output, then the fallback.

429/529/5xx (``ProviderError.retryable``) before any output are retried up to
``max_retries`` times with exponential backoff that honours ``retry-after``.
Then ``[agent.fallback]`` is tried when configured. Once output has been
streamed there is no retry: the error ends the turn.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from dataclasses import dataclass, replace
from typing import Any, AsyncIterator, Callable

from exoclaw_hooks import (
    AgentConfig,
    LLMRequest,
    ProviderError,
    ProviderSettings,
    StreamEvent,
    StreamEnd,
)

log = logging.getLogger("exoclaw.llm")


@dataclass
class RetryPolicy:
    max_retries: int = 2
    base_s: float = 0.5
    max_s: float = 8.0
    max_retry_after_s: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return max(0.0, min(retry_after, self.max_retry_after_s))
        return min(self.max_s, self.base_s * (2**attempt)) * (0.8 + 0.4 * random.random())


@dataclass
class CallTarget:
    """Which provider/model actually served a call (the fallback may have)."""

    provider: str
    model: str


def candidates_of(agent: AgentConfig) -> list[ProviderSettings]:
    """The agent's provider, then its ``[agent.fallback]`` if it has one."""
    return [agent.provider_settings()] + ([agent.fallback] if agent.fallback is not None else [])


async def stream_with_fallback(
    candidates: list[ProviderSettings],
    request: LLMRequest,
    provider_for: Callable[[ProviderSettings], Any],
    target: CallTarget,
    policy: RetryPolicy,
    deadline: float | None = None,
) -> AsyncIterator[StreamEvent]:
    """The events of the first candidate that answers; ``deadline`` (loop time): no retry waits past it."""
    last: ProviderError | None = None
    for index, settings in enumerate(candidates):
        target.provider, target.model = settings.provider, settings.model
        # a fallback keeps a max_tokens lowered for a budget (before_llm_call) when its own is larger
        req = request if index == 0 else replace(
            request, model=settings.model, max_tokens=min(request.max_tokens, settings.max_tokens))
        for attempt in range(policy.max_retries + 1):
            started = False
            try:
                stream = provider_for(settings).stream(req)
                ended = False
                try:
                    async for event in stream:
                        if isinstance(event, StreamEnd):
                            ended = True
                        else:
                            started = True
                        yield event
                        if ended:
                            break
                finally:
                    aclose = getattr(stream, "aclose", None)
                    if aclose is not None:
                        await aclose()
                if not ended:
                    raise ProviderError("stream ended before completion", output_started=started)
                return
            except ProviderError as exc:
                if started or exc.output_started:
                    exc.output_started = True
                    raise
                last = exc
                if exc.retryable and attempt < policy.max_retries:
                    delay = policy.delay(attempt, exc.retry_after)
                    if deadline is not None and asyncio.get_running_loop().time() + delay >= deadline:
                        log.warning("event=llm_no_retry provider=%s model=%s reason=%s", settings.provider,
                                    settings.model, _q(f"waiting {delay:.1f} s would pass the turn's deadline"))
                        break
                    log.warning(
                        "event=llm_retry provider=%s model=%s attempt=%d delay_s=%.2f reason=%s",
                        settings.provider, settings.model, attempt + 1, delay, _q(exc.reason),
                    )
                    await asyncio.sleep(delay)
                    continue
                break
            except (asyncio.CancelledError, GeneratorExit):
                raise
            except Exception as exc:  # noqa: BLE001 - a broken provider plugin
                err = ProviderError(f"{settings.provider} failed: {type(exc).__name__}: {exc}", output_started=started)
                if started:
                    raise err from exc
                last = err
                break
        if index + 1 < len(candidates):
            log.warning(
                "event=llm_fallback from=%s:%s to=%s:%s reason=%s",
                settings.provider, settings.model, candidates[index + 1].provider,
                candidates[index + 1].model, _q(last.reason if last else "?"),
            )
    assert last is not None
    raise last


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)
