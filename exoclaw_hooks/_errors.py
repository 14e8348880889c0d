"""Errors a plugin may raise, and what the core makes of each.

::

    ExoclawError
     ├── ConfigError          invalid configuration (start-up stops, each problem listed)
     ├── BudgetExceeded       before_llm_call refuses a call: "token budget exceeded (<scope>: <used>/<limit>)",
 │                        a dollar scope "budget exceeded (<scope>: $<used> of $<limit>)"
     ├── ProviderError        a provider failed: "provider error: <reason>"
     ├── ToolError            a tool failed: becomes a tool_result with is_error true
     ├── ChannelError         a webhook is refused with an HTTP status (400 bad payload, 401 failed check)
     └── InvalidParams        an RPC method's params are wrong: "invalid params: <field>: <problem>"
"""

from __future__ import annotations


class ExoclawError(Exception):
    """Base of every error plugins may raise on purpose."""


class ConfigError(ExoclawError):
    """Invalid configuration. ``problems`` lists every problem, one sentence each."""

    def __init__(self, problems: list[str] | str):
        if isinstance(problems, str):
            problems = [problems]
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class BudgetExceeded(ExoclawError):
    """Raised by ``before_llm_call`` to refuse a call; no provider request is made.

    ``used`` is what the scope had used before this call, in its ``unit``:
    ``"tokens"`` (``token budget exceeded (session: 9500/10000)``) or ``"usd"``
    (``budget exceeded (daily_usd: $4.98 of $5.00)``, to the cent: a call is
    refused when its worst case does not fit, so what was used may read a
    little under the limit).
    """

    def __init__(self, scope: str, used: float, limit: float, unit: str = "tokens"):
        self.scope, self.unit = scope, unit
        if unit == "usd":
            self.used, self.limit = float(used), float(limit)
            text = f"budget exceeded ({scope}: {_dollars(self.used)} of {_dollars(self.limit)})"
        else:
            self.used, self.limit = int(used), int(limit)
            text = f"token budget exceeded ({scope}: {self.used}/{self.limit})"
        super().__init__(text)


def _dollars(amount: float) -> str:
    """``$4.98``: to the cent."""
    return f"${amount:,.2f}"


class ProviderError(ExoclawError):
    """A provider call failed.

    :param reason: short text shown to the user after ``provider error: ``
        (``connection refused``, ``timeout``, the provider's own message…);
        it must never contain an API key.
    :param retryable: the same request may succeed later (429, 529, 5xx).
    :param retry_after: seconds the provider asked to wait, if it said.
    :param output_started: some of the reply was already streamed (no retry,
        no fallback).
    :param status: the HTTP status, when there was one.
    """

    def __init__(
        self,
        reason: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
        output_started: bool = False,
        status: int | None = None,
    ):
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after
        self.output_started = output_started
        self.status = status
        super().__init__(f"provider error: {reason}")


class ToolError(ExoclawError):
    """A tool failed; the message becomes the error tool result's content."""


class ChannelError(ExoclawError):
    """A webhook is refused: ``status`` (400, 401, 413 …) and a reason for the platform."""

    def __init__(self, status: int, reason: str):
        self.status = status
        self.reason = reason
        super().__init__(reason)


class InvalidParams(ExoclawError):
    """An RPC method's parameters are wrong: ``invalid params: <field>: <problem>``."""

    def __init__(self, field: str, problem: str):
        self.field, self.problem = field, problem
        super().__init__(f"invalid params: {field}: {problem}")
