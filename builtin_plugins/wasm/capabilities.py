"""Capabilities granted to a WASM plugin in config (SPEC §6), and what they link.

Only the grant in ``[[plugins]] capabilities`` counts; what a plugin asks
for in ``describe`` is only reported (``not_granted``).

* ``http:HOST`` → the host in Extism's ``allowed_hosts`` (``http:*`` → ``*``);
  with no ``http:`` grant the list is empty and every request is denied.
* ``store:NAME`` → the ``kv_*`` host functions over namespace NAME. The ABI
  has one namespace per plugin: with several ``store:`` grants the first is
  used and the others are reported as warnings.

Nothing else is linked: a module importing a host function it was not
granted fails to instantiate ("unknown import"), which rejects it at load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable


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
    loader already refuses them; this keeps a hand-built config safe).
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
