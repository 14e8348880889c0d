"""Who may open the gateway: loopback binds, the token, browser origins (SPEC §4), and how often.

:class:`AuthThrottle` slows failed logins per client address (issue 16: 3,460
tries/s over WS, 13,500/s over HTTP): the first ``burst`` failures cost
nothing; past them an address gets one attempt per ``1 / per_s`` seconds,
queued *before* its token is looked at (so parallel guessing gains
nothing, and a right token is no faster to discover than a wrong one), and
an attempt that would wait longer than ``max_wait_s`` is refused at once.
Failures decay at ``per_s``, so an address that stops failing is soon free.
A right token from a quiet address is never delayed.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import time
from dataclasses import dataclass
from typing import Awaitable, Callable
from urllib.parse import urlsplit


def is_loopback_host(host: str) -> bool:
    host = host.strip().strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def origin_allowed(origin: str | None, allowed: tuple[str, ...]) -> bool:
    """A request without ``Origin`` is not from a browser page; a loopback origin is allowed."""
    if origin is None:
        return True
    origin = origin.strip()
    if origin.rstrip("/") in {a.rstrip("/") for a in allowed}:
        return True
    try:
        host = urlsplit(origin).hostname
    except ValueError:
        return False
    return bool(host) and is_loopback_host(host)


def token_matches(expected: str, given: object) -> bool:
    """Constant-time comparison; an empty or non-string token never matches."""
    if not isinstance(given, str) or not given or not expected:
        return False
    # surrogatepass: a header that was not UTF-8 (or a JSON lone surrogate) is just a wrong token
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8", "surrogatepass"))


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def address_key(remote: str | None) -> str:
    """Who a failure is counted against: the IPv4 address, or the IPv6 /64 (one host's usual share)."""
    if not remote:
        return "-"
    try:
        ip = ipaddress.ip_address(remote)
    except ValueError:
        return remote
    if ip.version == 6 and ip.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip.ipv4_mapped or ip) if ip.version == 6 else str(ip)


@dataclass(slots=True)
class Ticket:
    """One admitted attempt; ``reserved`` when it holds a slot of its address's queue."""

    key: str
    reserved: bool


class AuthThrottle:
    """Failed-login pacing per client address (see the module docstring)."""

    def __init__(self, *, burst: int = 10, per_s: float = 2.0, max_wait_s: float = 10.0,
                 max_addresses: int = 10_000, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep):
        self.burst, self.per_s, self.max_wait_s = burst, per_s, max_wait_s
        self.max_addresses, self.clock, self.sleep = max_addresses, clock, sleep
        #: address key -> (failures, as of this time); failures decay at per_s
        self._levels: dict[str, tuple[float, float]] = {}

    def _level(self, key: str, now: float) -> float:
        level, stamp = self._levels.get(key, (0.0, now))
        return max(0.0, level - (now - stamp) * self.per_s)

    def _add(self, key: str, amount: float) -> None:
        now = self.clock()
        level = self._level(key, now) + amount
        self._levels.pop(key, None)  # re-inserted last: the dict stays in least-recently-failed order
        if level > 0:
            self._levels[key] = (level, now)
            if len(self._levels) > self.max_addresses:
                self._prune(now)

    def _prune(self, now: float) -> None:
        for key in [k for k, (level, stamp) in self._levels.items() if level - (now - stamp) * self.per_s <= 0]:
            del self._levels[key]
        while len(self._levels) > self.max_addresses:  # still too many: forget the oldest
            del self._levels[next(iter(self._levels))]

    def retry_after(self, remote: str | None) -> float:
        """Seconds until ``remote`` may try again without queueing."""
        level = self._level(address_key(remote), self.clock())
        return max(0.0, (level + 1 - self.burst) / self.per_s)

    async def admit(self, remote: str | None) -> Ticket | None:
        """Wait for this address's turn to try a token; ``None``: refused without trying."""
        key = address_key(remote)
        level = self._level(key, self.clock())
        if level <= self.burst - 1:  # (not "< burst": a burst-th failure that decayed a hair is still one)
            return Ticket(key, reserved=False)
        wait = (level + 1 - self.burst) / self.per_s
        if wait > self.max_wait_s:
            return None
        self._add(key, 1)  # the slot is held (as a failure) until the attempt settles
        await self.sleep(wait)
        return Ticket(key, reserved=True)

    def settle(self, ticket: Ticket, ok: bool) -> None:
        """Record the attempt's outcome: a failure counts, a success gives back its slot."""
        if ok and ticket.reserved:
            self._add(ticket.key, -1)
        elif not ok and not ticket.reserved:
            self._add(ticket.key, 1)
