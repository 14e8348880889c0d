"""Prometheus metrics (SPEC §11), one registry per gateway.

Labels are bounded: agent ids, provider and model names, tool names and
channel names come from the configuration; never a session key or a user id.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.connections = Gauge("exoclaw_connections", "Open WebSocket connections", registry=r)
        self.turns_in_flight = Gauge("exoclaw_turns_in_flight", "Turns being processed", registry=r)
        self.turns = Counter("exoclaw_turns", "Turns by agent and outcome", ["agent", "outcome"], registry=r)
        self.llm_seconds = Histogram(
            "exoclaw_llm_call_seconds", "LLM call duration", ["provider", "model"],
            buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.llm_ttft = Histogram(
            "exoclaw_llm_ttft_seconds", "Time to the first streamed token", ["provider", "model"],
            buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.tokens = Counter("exoclaw_tokens", "Tokens by direction", ["direction"], registry=r)
        self.cost = Counter("exoclaw_cost_usd", "Estimated spend in USD", registry=r)
        self.tool_calls = Counter("exoclaw_tool_calls", "Tool calls by tool and outcome", ["tool", "outcome"], registry=r)
        self.tool_seconds = Histogram(
            "exoclaw_tool_call_seconds", "Tool call duration", ["tool"], buckets=_LATENCY_BUCKETS, registry=r
        )
        self.webhooks = Counter("exoclaw_webhooks", "Webhook deliveries by channel and outcome", ["channel", "outcome"], registry=r)
        self.budget_refusals = Counter("exoclaw_budget_refusals", "Calls refused by a budget", ["scope"], registry=r)
        self.budget_warnings = Counter(
            "exoclaw_budget_warnings", "Budget scopes that passed their warn_at share (once per period)", ["scope"],
            registry=r)
        self.output_cuts = Counter(
            "exoclaw_llm_output_cuts", "Calls cut for streaming past their max_tokens", ["provider"], registry=r)
        self.errors = Counter("exoclaw_errors", "Errors by kind", ["kind"], registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)

