"""Strict marshmallow fields and validators for the config file.

TOML already gives typed values, so nothing here coerces: ``"80"`` is not a
port and ``1`` is not ``true``. Messages are the part after ``key: `` in a
config problem; the formatter (``errors.py``) appends ``(got <value>)``.
"""

from __future__ import annotations

import ipaddress
import math
import re
from contextvars import ContextVar
from typing import Any
from urllib.parse import urlsplit

from marshmallow import ValidationError, fields

from exoclaw_hooks import RESERVED_NAMESPACES

REQUIRED = "is required"
UNKNOWN = "unknown key"
NOT_TABLE = "must be a table"

BUILTIN_PROVIDERS = ("anthropic", "openai", "echo")
#: the provider names valid for this load (builtins + ones plugins add);
#: a ContextVar because marshmallow 4 has no schema context.
KNOWN_PROVIDERS: ContextVar[tuple[str, ...] | None] = ContextVar("known_providers", default=BUILTIN_PROVIDERS)

_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)\Z")
_STORE_NAME = re.compile(r"[A-Za-z0-9_.-]+\Z")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}\Z")
_PRICING_KEY = re.compile(r"[A-Za-z0-9_.-]+:\S+\Z")


class Str(fields.Field):
    """A string; empty ones are refused unless ``allow_empty``."""

    default_error_messages = {"required": REQUIRED, "invalid": "must be a string", "empty": "must not be empty"}

    def __init__(self, *, allow_empty: bool = False, **kwargs: Any):
        self.allow_empty = allow_empty
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise self.make_error("invalid")
        if not value and not self.allow_empty:
            raise self.make_error("empty")
        return value


class Int(fields.Field):
    """An integer (never a bool or a float) within ``[minimum, maximum]``."""

    default_error_messages = {"required": REQUIRED}

    def __init__(self, *, minimum: int | None = None, maximum: int | None = None, **kwargs: Any):
        self.minimum, self.maximum = minimum, maximum
        if minimum is not None and maximum is not None:
            text = f"must be an integer from {minimum} to {maximum}"
        elif minimum == 1:
            text = "must be a positive integer"
        elif minimum == 0:
            text = "must be a non-negative integer"
        else:
            text = "must be an integer"
        super().__init__(**kwargs)
        self.error_messages["invalid"] = text

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid")
        if (self.minimum is not None and value < self.minimum) or (
            self.maximum is not None and value > self.maximum
        ):
            raise self.make_error("invalid")
        return value


class Num(fields.Field):
    """A finite number (int or float, not bool), ``>= 0`` or ``> 0``."""

    default_error_messages = {"required": REQUIRED}

    def __init__(self, *, positive: bool = False, **kwargs: Any):
        self.positive = positive
        super().__init__(**kwargs)
        self.error_messages["invalid"] = "must be a positive number" if positive else "must be a non-negative number"

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.make_error("invalid")
        if value < 0 or (self.positive and value == 0):
            raise self.make_error("invalid")
        return value


class Bool(fields.Field):
    default_error_messages = {"required": REQUIRED, "invalid": "must be true or false"}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class StrList(fields.List):
    """A list of non-empty strings (an item's error names its position)."""

    default_error_messages = {"required": REQUIRED, "invalid": "must be a list of strings"}

    def __init__(self, *, validate_item=None, **kwargs: Any):
        super().__init__(Str(validate=validate_item), **kwargs)


class Table(fields.Dict):
    """A TOML table; ``values`` may be a field (``Str()``, ``Nested(...)``) or None for free-form."""

    default_error_messages = {"required": REQUIRED, "invalid": NOT_TABLE}

    def __init__(self, values: fields.Field | None = None, *, key_validate=None, **kwargs: Any):
        super().__init__(keys=Str(validate=key_validate), values=values, **kwargs)


class Nested(fields.Nested):
    default_error_messages = {"required": REQUIRED, "type": NOT_TABLE}


class TableArray(fields.List):
    """An array of tables (``[[plugins]]``); ``label_key`` names entries in messages."""

    default_error_messages = {"required": REQUIRED, "invalid": "must be an array of tables ([[...]])"}

    def __init__(self, schema: type, *, label_key: str | None = None, **kwargs: Any):
        super().__init__(Nested(schema), metadata={"label_key": label_key}, **kwargs)


# --------------------------------------------------------------------------
# validators
# --------------------------------------------------------------------------


def is_hostname(text: str) -> bool:
    if text.endswith("."):
        text = text[:-1]
    return 0 < len(text) <= 253 and all(_HOST_LABEL.match(p) for p in text.split("."))


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def is_host(text: str) -> bool:
    return is_ip(text) or (is_hostname(text) and not text.replace(".", "").isdigit())


def is_loopback(host: str) -> bool:
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host(value: str) -> None:
    if not is_host(value):
        raise ValidationError("must be an IP address or a hostname")


def provider(value: str) -> None:
    known = KNOWN_PROVIDERS.get()
    if known is not None and value not in known:
        raise ValidationError(f"must be one of {', '.join(known)}")


def http_url(value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationError("must be an http:// or https:// URL")


def capability(value: str) -> None:
    kind, sep, arg = value.partition(":")
    if sep and kind == "http":
        bare = arg[1:-1] if arg.startswith("[") and arg.endswith("]") else arg
        if arg == "*" or is_host(bare):
            return
    if sep and kind == "store" and _STORE_NAME.match(arg):
        if arg in RESERVED_NAMESPACES:
            raise ValidationError(
                f"store:{arg} is the gateway's own data and cannot be granted to a plugin "
                f"(reserved: {', '.join(sorted(RESERVED_NAMESPACES))})")
        return
    raise ValidationError("must be http:HOST, http:* or store:NAME (NAME: letters, digits, _ . -)")


def env_name(value: str) -> None:
    if not _ENV_NAME.match(value):
        raise ValidationError("must be the name of an environment variable (letters, digits, _)")


def sha256(value: str) -> None:
    if not _SHA256.match(value):
        raise ValidationError("must be 64 hexadecimal characters")


def pricing_key(value: str) -> None:
    if not _PRICING_KEY.match(value):
        raise ValidationError('table name must look like "provider:model", e.g. "openai:gpt-4o"')


def forbidden(message: str):
    def check(value: Any) -> None:
        raise ValidationError(message)

    return check
