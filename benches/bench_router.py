"""How long ``RouterPlugin.resolve_route`` takes as the number of bindings grows.

Measures one resolve (index lookups + session key) with 100, 1,000 and
10,000 ``[[bindings]]`` in a realistic mix of shapes: mostly per-peer
bindings, then per-account, per-guild, per-team, a few guild+peer and
team+account ones, and one channel-wide binding per channel. The message
matches a team+account binding (mid-specificity), so every more specific
shape present is tried and missed first. The index is built once when
the router receives its ``[[bindings]]`` (outside the timed loop, as in the gateway). Target: median
under 20 µs at every size, i.e. no growth with the number of bindings.

Run: ``PYTHONPATH=. python -m pytest benches/bench_router.py --benchmark-columns=min,median,mean,max``
"""

from __future__ import annotations

import random

import pytest

from builtin_plugins.router import Binding, RouterPlugin
from exoclaw_hooks import AgentConfig, IncomingMessage
from exoclaw_hooks.testing import tables_of

CHANNELS = ("telegram", "slack", "discord", "whatsapp", "webchat")
# (weight, fields named besides channel)
MIX = (
    (50, ("peer_id",)),
    (15, ("account_id",)),
    (12, ("guild_id",)),
    (10, ("team_id",)),
    (8, ("guild_id", "peer_id")),
    (5, ("team_id", "account_id")),
)


def make_bindings(n: int) -> tuple[dict[str, AgentConfig], tuple[Binding, ...]]:
    rng = random.Random(n)
    agents = {f"agent{i}": AgentConfig(id=f"agent{i}", provider="echo", model="echo") for i in range(20)}
    bindings = [Binding(ch, "agent0") for ch in CHANNELS]
    weights, shapes = zip(*MIX)
    i = 0
    while len(bindings) < n - 1:
        fields = rng.choices(shapes, weights)[0]
        i += 1
        bindings.append(Binding(rng.choice(CHANNELS), f"agent{i % 20}", **{f: f"{f}-{i}" for f in fields}))
    # the binding the benchmark message matches: mid-specificity (team + account)
    bindings.append(Binding("slack", "agent7", team_id="team-x", account_id="acct-x"))
    return agents, tuple(bindings)


@pytest.mark.parametrize("n", [100, 1_000, 10_000])
def test_resolve_route(benchmark, n):
    agents, bindings = make_bindings(n)
    assert len(bindings) == n
    router = RouterPlugin()
    tables_of(router)["bindings"].apply(bindings)  # builds the index once, as the gateway does
    message = IncomingMessage(
        channel="slack", account="acct-x", content="hello", peer="someone", guild="guild-y", team="team-x"
    )
    route = benchmark(router.resolve_route, message, agents, "agent0")
    assert route.agent_id == "agent7"
    assert route.session_key == "agent7:slack:acct-x:someone"
