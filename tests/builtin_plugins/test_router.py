"""The builtin router: binding priority, session keys, the shape index."""

from __future__ import annotations

import random

import pytest

from builtin_plugins.router import RouterPlugin
from exoclaw_hooks import AgentConfig, IncomingMessage, Route
from builtin_plugins.router import Binding
from exoclaw_hooks.testing import tables_of

AGENTS = ("default", "peer", "guild", "team", "account", "channel", "other")


class Setup:
    """A router configured with ``bindings``, and the agents it routes to."""

    def __init__(self, bindings: tuple[Binding, ...], agents=AGENTS, default="default"):
        self.bindings, self.default_agent = bindings, default
        self.agents = {a: AgentConfig(id=a, provider="echo", model="echo") for a in agents}
        self.router = RouterPlugin()
        tables_of(self.router)["bindings"].apply(bindings)  # as the core hands over [[bindings]]

    def route(self, m: IncomingMessage) -> Route | None:
        return self.router.resolve_route(m, self.agents, self.default_agent)


def settings(*bindings: Binding, agents=AGENTS, default="default") -> Setup:
    return Setup(tuple(bindings), agents, default)


def msg(channel="tg", account="acc", peer="p1", guild="g1", team="t1") -> IncomingMessage:
    return IncomingMessage(channel=channel, account=account, content="hi", peer=peer, guild=guild, team=team)


def agent_for(s: Setup, m: IncomingMessage | None = None) -> str | None:
    route = s.route(m or msg())
    return route.agent_id if route else None


ONE_FIELD = {
    "peer": Binding("tg", "peer", peer_id="p1"),
    "guild": Binding("tg", "guild", guild_id="g1"),
    "team": Binding("tg", "team", team_id="t1"),
    "account": Binding("tg", "account", account_id="acc"),
    "channel": Binding("tg", "channel"),
}
ORDER = ["peer", "guild", "team", "account", "channel"]


@pytest.mark.parametrize(
    "winner,loser", [(w, l) for i, w in enumerate(ORDER) for l in ORDER[i + 1:]]
)
def test_every_priority_pair(winner, loser):
    for bs in ((ONE_FIELD[winner], ONE_FIELD[loser]), (ONE_FIELD[loser], ONE_FIELD[winner])):
        assert agent_for(settings(*bs)) == winner


def test_channel_beats_default_and_no_match_is_default():
    assert agent_for(settings(ONE_FIELD["channel"])) == "channel"
    assert agent_for(settings(ONE_FIELD["channel"]), msg(channel="slack")) == "default"
    assert agent_for(settings()) == "default"


def test_a_binding_matches_only_when_every_named_field_matches():
    b = Binding("tg", "other", guild_id="g1", account_id="acc")
    s = settings(b, ONE_FIELD["team"])
    assert agent_for(s) == "other"
    assert agent_for(s, msg(account="someone-else")) == "team"
    assert agent_for(s, msg(guild=None)) == "team"
    assert agent_for(s, msg(channel="slack")) == "default"


def test_multi_field_bindings_compare_field_by_field():
    guild_account = Binding("tg", "other", guild_id="g1", account_id="acc")
    guild_team = Binding("tg", "team", guild_id="g1", team_id="t1")
    # both name guild; guild_team names team, which outranks account
    assert agent_for(settings(guild_account, guild_team)) == "team"
    # peer alone beats guild+team+account
    assert agent_for(settings(Binding("tg", "guild", guild_id="g1", team_id="t1", account_id="acc"),
                              ONE_FIELD["peer"])) == "peer"


def test_route_and_session_key():
    route = settings(ONE_FIELD["account"]).route(msg(peer="main"))
    assert route == Route("account", "account:tg:acc:main")


def test_key_parts_are_escaped_so_senders_never_collide():
    s = settings()
    k1 = s.route(msg(account="a:b")).session_key
    k2 = s.route(msg(account="a%3Ab")).session_key
    assert k1 == "default:tg:a%3Ab:p1"
    assert k2 == "default:tg:a%253Ab:p1"
    assert k1 != k2


def test_unknown_or_missing_agents_give_none():
    assert agent_for(settings(Binding("tg", "ghost"))) is None
    assert agent_for(settings(default="ghost")) is None
    assert agent_for(settings(ONE_FIELD["peer"], agents=())) is None


def test_new_bindings_replace_the_index():
    s = settings(ONE_FIELD["team"])
    assert s.route(msg()).agent_id == "team"
    tables_of(s.router)["bindings"].apply((ONE_FIELD["guild"],))
    assert s.route(msg()).agent_id == "guild"


# ---------------------------------------------------------------- property check


def brute_force(message: IncomingMessage, s: Setup) -> str:
    """The SPEC's words, literally: every matching binding, the most specific wins."""

    def named(b):
        return (b.peer_id is not None, b.guild_id is not None, b.team_id is not None,
                b.account_id is not None)

    def matches(b):
        return b.channel == message.channel and all(
            want is None or want == got
            for want, got in ((b.peer_id, message.peer), (b.guild_id, message.guild),
                              (b.team_id, message.team), (b.account_id, message.account))
        )

    hits = [b for b in s.bindings if matches(b)]
    return max(hits, key=named).agent_id if hits else s.default_agent


def test_index_agrees_with_brute_force_on_random_bindings():
    rng = random.Random(20240611)
    vals = {"channel": ["tg", "slack", "discord"], "peer": ["p1", "p2", "p3", "main"],
            "guild": ["g1", "g2", None], "team": ["t1", "t2", None], "account": ["a1", "a2", "a:3"]}
    for _ in range(20):
        bindings, seen = [], set()
        for _ in range(rng.randint(0, 60)):
            kw = {f"{f}_id": rng.choice([v for v in vals[f] if v]) if rng.random() < 0.4 else None
                  for f in ("peer", "guild", "team", "account")}
            b = Binding(rng.choice(vals["channel"]), rng.choice(AGENTS), **kw)
            ident = (b.channel, b.peer_id, b.guild_id, b.team_id, b.account_id)
            if ident not in seen:  # config validation rejects duplicates
                seen.add(ident)
                bindings.append(b)
        s = settings(*bindings)
        for _ in range(200):
            m = msg(**{k: rng.choice(v) for k, v in vals.items()})
            assert s.route(m).agent_id == brute_force(m, s), (m, bindings)
