"""Declaring a plugin's settings: a base schema, strict fields and validators.

The one module of ``exoclaw_hooks`` that needs marshmallow (a dependency of
Exoclaw's runtime); ``import exoclaw_hooks`` alone never loads it. A plugin
declares the table it owns with :class:`exoclaw_hooks.SettingsTable` and a
schema written with these fields::

    from exoclaw_hooks.config import Int, Section, Str

    class AuditSettings(Section):
        path = Str(required=True)
        keep_days = Int(minimum=1)

TOML already gives typed values, so nothing here coerces: ``"80"`` is not a
port and ``1`` is not ``true``. Messages are the part after ``key: `` in a
config problem; the core appends ``(got <value>)`` and the location
(``config.toml: [audit] keep_days: must be a positive integer (got 0)``).
Unknown keys are errors (``Section`` raises on them).
"""

from __future__ import annotations

import ipaddress
import math
import re
from typing import Any
from urllib.parse import urlsplit

from marshmallow import RAISE, Schema, ValidationError, fields


REQUIRED = "is required"
UNKNOWN = "unknown key"
NOT_TABLE = "must be a table"


_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)\Z")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}\Z")


class Section(Schema):
    """Base of every settings table: unknown keys are errors, messages are Exoclaw's."""

    class Meta:
        unknown = RAISE

    error_messages = {"unknown": UNKNOWN, "type": NOT_TABLE}


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
        # metadata may also carry "doc" and the "example" entries of the generated example config
        metadata = {**kwargs.pop("metadata", {}), "label_key": label_key}
        super().__init__(Nested(schema), metadata=metadata, **kwargs)


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


def http_url(value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationError("must be an http:// or https:// URL")


def env_name(value: str) -> None:
    if not _ENV_NAME.match(value):
        raise ValidationError("must be the name of an environment variable (letters, digits, _)")


def sha256(value: str) -> None:
    if not _SHA256.match(value):
        raise ValidationError("must be 64 hexadecimal characters")


def forbidden(message: str):
    def check(value: Any) -> None:
        raise ValidationError(message)

    return check
