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

from operator import attrgetter
from typing import Any, Callable

from exoclaw_hooks import Binding, IncomingMessage, Route, Settings, hookimpl, make_session_key

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


class RouterPlugin:
    """Resolves routes from ``settings.bindings``; one instance per gateway.

    The index is built once per ``Settings`` object and rebuilt when a
    different one arrives (a reload): the cache holds a reference to the
    settings it was built from, so ``id`` reuse cannot fool it.
    """

    def __init__(self) -> None:
        self._cache: tuple[int, Settings, list[_ShapeIndex]] | None = None

    def _index(self, settings: Settings) -> list[_ShapeIndex]:
        cache = self._cache
        if cache is not None and cache[0] == id(settings) and cache[1] is settings:
            return cache[2]
        index = build_index(tuple(settings.bindings))
        self._cache = (id(settings), settings, index)  # one assignment: safe across threads
        return index

    @hookimpl
    def resolve_route(self, message: IncomingMessage, settings: Settings) -> Route | None:
        agents = settings.agents
        if not agents:
            return None
        agent_id = settings.default_agent
        for getter, table in self._index(settings):
            found = table.get(getter(message))
            if found is not None:
                agent_id = found
                break
        if agent_id not in agents:
            return None  # the core answers "no agent configured for …"
        return Route(
            agent_id, make_session_key(agent_id, message.channel, message.account, message.peer)
        )
