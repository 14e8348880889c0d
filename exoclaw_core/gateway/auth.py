"""Who may open the gateway: loopback binds, the token, and browser origins (SPEC §4)."""

from __future__ import annotations

import hmac
import ipaddress
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
