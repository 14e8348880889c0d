"""The builtin router: ``[[bindings]]`` → the agent and session of a message (SPEC §3, §4).

A binding matches a message when every key it names equals the message's
field; among matching bindings the most specific wins, comparing the fields
each names in priority order peer > guild > team > account > channel; no
match → the default agent.

Resolving must not scan every binding. Bindings are grouped by their
*shape* — the set of optional fields they name (channel is always named, so
there are at most 2^4 shapes) — and each shape is a dict from the tuple of
values to the agent. The priority rule makes shapes totally ordered: encode
a shape as the bits peer=8, guild=4, team=2, account=1 and the larger
number is the more specific one. Resolving tries the shapes present, most
specific first, with one dict lookup each: 10,000 bindings cost what 100 do.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Callable, Mapping

from exoclaw_hooks import (
    AgentConfig,
    ConfigContext,
    ConfigError,
    IncomingMessage,
    Route,
    SettingsTable,
    hookimpl,
    make_session_key,
)
from exoclaw_hooks.config import Section, Str, TableArray


@dataclass(frozen=True, slots=True)
class Binding:
    """One ``[[bindings]]`` entry."""

    channel: str
    agent_id: str
    peer_id: str | None = None
    guild_id: str | None = None
    team_id: str | None = None
    account_id: str | None = None


class BindingSchema(Section):
    """One ``[[bindings]]`` entry: routing by message fields."""

    channel = Str(required=True, metadata={"doc": "The channel the message came in on (required).", "example": "telegram"})
    agent_id = Str(required=True, metadata={"doc": "The agent that answers (required).", "example": "work"})
    peer_id = Str(metadata={"doc": "Match this peer (a chat, a conversation).", "example": "work-group-123"})
    guild_id = Str(metadata={"doc": "Match this guild (a server, a workspace)."})
    team_id = Str(metadata={"doc": "Match this team."})
    account_id = Str(metadata={"doc": "Match this sender (an OpenAI client's `user`)."})


BINDINGS = TableArray(BindingSchema, label_key="channel", metadata={
    "example": [
        {"channel": "telegram", "peer_id": "work-group-123", "agent_id": "work"},
        {"channel": "mock", "account_id": "alice", "agent_id": "personal"},
    ],
})
MATCH_KEYS = ("peer_id", "guild_id", "team_id", "account_id", "channel")

# (binding attribute, message attribute, shape bit), in priority order.
_FIELDS = (
    ("peer_id", "peer", 8),
    ("guild_id", "guild", 4),
    ("team_id", "team", 2),
    ("account_id", "account", 1),
)

# A shape's index: how to read the key from a message, and key -> agent id.
_ShapeIndex = tuple[Callable[[IncomingMessage], Any], dict[Any, str]]


def binding_shape(binding: Binding) -> int:
    """The shape of a binding as a number; a larger number is more specific."""
    return sum(bit for attr, _, bit in _FIELDS if getattr(binding, attr) is not None)


def build_index(bindings: tuple[Binding, ...]) -> list[_ShapeIndex]:
    """Group ``bindings`` by shape, most specific shape first.

    Keys are ``(channel, <named fields in priority order>)``, read from a
    message by one ``attrgetter``. Should two bindings share a shape and its
    values (config validation rejects that) the first one wins.
    """
    by_shape: dict[int, dict[Any, str]] = {}
    for b in bindings:
        shape = binding_shape(b)
        key = (b.channel, *(getattr(b, attr) for attr, _, bit in _FIELDS if shape & bit))
        by_shape.setdefault(shape, {}).setdefault(key, b.agent_id)
    index: list[_ShapeIndex] = []
    for shape in sorted(by_shape, reverse=True):
        names = ["channel", *(msg_attr for _, msg_attr, bit in _FIELDS if shape & bit)]
        getter = attrgetter(*names)
        if len(names) == 1:  # attrgetter of one name returns the bare value
            channel_only = getter
            getter = lambda m, _g=channel_only: (_g(m),)  # noqa: E731
        index.append((getter, by_shape[shape]))
    return index


def build_bindings(entries: list[Mapping[str, Any]], context: ConfigContext) -> tuple[Binding, ...]:
    """``[[bindings]]`` → bindings; each names a known agent, and no two match the same messages."""
    problems: list[str] = []
    seen: dict[tuple[Any, ...], int] = {}
    agents = ", ".join(context.agents)
    out = []
    for index, entry in enumerate(entries):
        if entry is None:  # refused by its schema (config check goes on with the others)
            continue
        where = f'#{index + 1} (channel "{entry["channel"]}")'
        if entry["agent_id"] not in context.agents:
            problems.append(f'{where} agent_id: unknown agent, must be one of {agents} (got "{entry["agent_id"]}")')
        match = tuple((k, entry[k]) for k in MATCH_KEYS if k in entry)
        if match in seen:
            what = ", ".join(f'{k} "{v}"' for k, v in match)
            problems.append(f"{where}: matches the same messages as [[bindings]] #{seen[match] + 1} ({what}); remove one")
        else:
            seen[match] = index
        out.append(Binding(**entry))
    if problems:
        raise ConfigError([f"[[bindings]] {p}" for p in problems])
    return tuple(out)


class RouterPlugin:
    """Resolves routes from its ``[[bindings]]``; one instance per gateway."""

    def __init__(self) -> None:
        self._index: list[_ShapeIndex] = []

    @hookimpl
    def register_settings(self, register: Callable[[SettingsTable], None]) -> None:
        register(SettingsTable(
            "bindings", BINDINGS, apply=self.configure, build=build_bindings,
            doc="Routing: a binding matches a message when every key it names equals the message's field; "
                "the most specific wins (peer > guild > team > account > channel); no match: the default agent.",
        ))

    def configure(self, bindings: tuple[Binding, ...]) -> None:
        self._index = build_index(tuple(bindings))

    @hookimpl
    def resolve_route(
        self, message: IncomingMessage, agents: Mapping[str, AgentConfig], default_agent: str
    ) -> Route | None:
        if not agents:
            return None
        agent_id = default_agent
        for getter, table in self._index:
            found = table.get(getter(message))
            if found is not None:
                agent_id = found
                break
        if agent_id not in agents:
            return None  # the core answers "no agent configured for …"
        return Route(
            agent_id, make_session_key(agent_id, message.channel, message.account, message.peer)
        )
