"""Capabilities granted to a WASM plugin in config (SPEC §6), and what they link.

Only the grant in ``[[plugins]] capabilities`` counts; what a plugin asks
for in ``describe`` is only reported (``not_granted``).

* ``http:HOST`` → HOST may be reached (``http:*``: any host), by the
  plugin's own HTTP (``hosthttp``: every redirect hop is checked too) and by
  the host's outgoing channel requests; with no ``http:`` grant every
  request is denied.
* ``store:NAME`` → the ``kv_*`` host functions over namespace NAME. The ABI
  has one namespace per plugin: with several ``store:`` grants the first is
  used and the others are reported as warnings. The namespaces of the core
  and the builtins (``RESERVED_NAMESPACES``) are never granted: such a
  plugin is refused at load.

Nothing else is linked: a module importing a host function it was not
granted fails to instantiate ("unknown import"), which rejects it at load.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Iterable


#: kv namespaces the core and the builtin plugins keep for themselves: a WASM
#: plugin is never granted one (``store:NAME``), so it can neither read nor
#: forge their data. Every namespace a builtin uses is listed here (a test
#: checks what a real gateway writes), and the builtins' names are kept free
#: for them.
RESERVED_NAMESPACES = frozenset({
    "metering",  # budgets: the start of each session's period
    "core", "exoclaw", "gateway", "store", "router", "memory", "memory-soul", "memory-semantic",
    "memory-episodic", "memory-recall", "wasm", "mcp", "provider-anthropic", "provider-openai", "provider-echo",
})


class GrantError(ValueError):
    """A grant that must not be given (``str()`` says why)."""


@dataclass(frozen=True)
class Grants:
    """What a plugin's config grants, parsed."""

    #: Extism ``allowed_hosts`` (empty: every host denied)
    allowed_hosts: tuple[str, ...] = ()
    #: the kv namespace, or ``None`` when no ``store:`` grant (no host functions linked)
    store_namespace: str | None = None
    #: the granted capabilities as written (for reports)
    granted: tuple[str, ...] = ()
    #: one sentence per problem worth a warning (ignored grants)
    warnings: tuple[str, ...] = field(default=())


def parse_grants(capabilities: Iterable[str]) -> Grants:
    """Parse ``http:HOST`` / ``http:*`` / ``store:NAME`` grants.

    Unknown or empty capabilities are ignored with a warning (the config
    loader already refuses them; this keeps a hand-built config safe). A
    reserved namespace raises :class:`GrantError`.
    """
    hosts: list[str] = []
    namespaces: list[str] = []
    granted: list[str] = []
    warnings: list[str] = []
    for cap in capabilities:
        kind, sep, arg = str(cap).partition(":")
        arg = arg.strip()
        if sep and kind == "http" and arg:
            if arg.startswith("[") and arg.endswith("]"):  # [::1] → ::1 (Extism matches bare hosts)
                arg = arg[1:-1]
            if arg not in hosts:
                hosts.append(arg)
            granted.append(cap)
        elif sep and kind == "store" and arg:
            if arg in RESERVED_NAMESPACES:
                raise GrantError(reserved_message(arg))
            if arg not in namespaces:
                namespaces.append(arg)
            granted.append(cap)
        else:
            warnings.append(f"capability {cap!r} ignored (expected http:HOST, http:* or store:NAME)")
    if "*" in hosts:
        hosts = ["*"]
    if len(namespaces) > 1:
        warnings.append(
            f"several store: grants ({', '.join(namespaces)}); a plugin has one namespace: using {namespaces[0]}"
        )
    return Grants(
        allowed_hosts=tuple(hosts),
        store_namespace=namespaces[0] if namespaces else None,
        granted=tuple(granted),
        warnings=tuple(warnings),
    )


def reserved_message(namespace: str) -> str:
    return (f"store:{namespace} is the gateway's own data and cannot be granted to a plugin "
            f"(reserved: {', '.join(sorted(RESERVED_NAMESPACES))})")


def host_granted(host: str, allowed: Iterable[str]) -> bool:
    """Whether ``host`` (as in a URL) is one of the granted hosts.

    Case-insensitive, a trailing dot ignored, brackets of an IPv6 literal
    ignored; a grant may be a glob as Extism's ``allowed_hosts`` are
    (``*`` = every host).
    """
    h = _bare(host)
    if not h:
        return False
    return any(fnmatch.fnmatchcase(h, _bare(pattern)) for pattern in allowed)


def _bare(host: str) -> str:
    h = host.strip().lower().rstrip(".")
    if h.startswith("[") and h.endswith("]"):
        h = h[1:-1]
    return h


def not_granted(asked: Iterable[str], granted: Iterable[str]) -> list[str]:
    """Capabilities a plugin asks for in ``describe`` that its config does not grant.

    ``http:*`` granted covers every ``http:HOST`` asked for.
    """
    have = set(granted)
    any_host = "http:*" in have
    out: list[str] = []
    for cap in asked:
        if cap in have or (any_host and str(cap).startswith("http:")):
            continue
        if cap not in out:
            out.append(cap)
    return out
