"""Single-line structured logs, a request id per turn, and secret redaction.

``EXOCLAW_LOG`` sets the level (default ``info``), ``EXOCLAW_LOG_FORMAT=json``
switches from ``key=value`` text to one JSON object per line. The redaction
and the escaping sit in the formatters, so they apply to every line whichever
logger wrote it, at every level.

**Escaping.** Clients put text into fields that reach log lines (a channel,
a peer, a method name). Whatever they send, a line stays one line and shows
exactly what it holds: control characters (NUL, ESC, CR, LF …), the C1
controls, the Unicode line separators, bidirectional overrides and lone
surrogates are written as ``\\xNN`` / ``\\uNNNN`` escapes by the formatter,
once, for every logger (issue 16). A lone surrogate would otherwise not even
be writable to a UTF-8 stream.

**Repeated events.** :class:`Every` logs an event that can repeat thousands
of times a second (accept errors, dropped connections, failed logins) once
per interval with the count of the ones it folded in.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import os
import re
import sys
import threading
import time
from typing import Any, Callable

from exoclaw_hooks import log_value

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("exoclaw_request_id", default="-")

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_secret_re: re.Pattern[str] | None = None
REDACTED = "[REDACTED]"

# Shapes of credentials that must never be printed even if nobody registered them.
_GENERIC = re.compile(
    # (not ``{{secret:NAME}}``: a placeholder names a secret, it is not one)
    r"(?i)((?<!\{\{)(?:x-api-key|authorization|api[_-]?key|token|secret)[\"']?\s*[:=]\s*[\"']?)(?:bearer\s+)?[^\s\"',}]{6,}"
)


def register_secret(value: str | None) -> None:
    """Never print ``value`` in a log line again (values shorter than 4 chars are ignored)."""
    global _secret_re
    if not value or len(value) < 4:
        return
    with _secrets_lock:
        if value in _secrets:
            return
        _secrets.add(value)
        ordered = sorted(_secrets, key=len, reverse=True)
        _secret_re = re.compile("|".join(re.escape(s) for s in ordered))


_GENERIC_HINTS = ("key", "token", "secret", "authorization")


def redact(text: str) -> str:
    """Remove every registered secret and credential-looking value from ``text``."""
    pattern = _secret_re
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    lowered = text.lower()
    # the generic pattern is case-insensitive and slow: run it only where it can match
    if any(h in lowered for h in _GENERIC_HINTS):
        text = _GENERIC.sub(lambda m: m.group(1) + REDACTED, text)
    return text


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


# what never reaches a log line raw (see the module docstring)
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(match: re.Match[str]) -> str:
    c = match.group()
    named = _NAMED.get(c)
    if named is not None:
        return named
    code = ord(c)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _escape_json_char(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def escape(text: str) -> str:
    """``text`` with every character that must not reach a log line raw written as an escape."""
    if text.isascii() and text.isprintable():  # the common case: nothing to do
        return text
    return _UNSAFE.sub(_escape_char, text)


_KV = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = dt.datetime.fromtimestamp(record.created, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        msg = record.getMessage()
        line = f"{ts}Z level={record.levelname.lower()} logger={record.name} rid={getattr(record, 'request_id', '-')} {msg}"
        if record.exc_info:
            line += " exc=" + json.dumps(self.formatException(record.exc_info))
        return escape(redact(line))  # redact first: a secret is matched as it was given


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        out = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat().replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
        }
        for key, value in _KV.findall(msg):
            out.setdefault(key, value[1:-1] if value.startswith('"') else value)
        out["msg"] = msg
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        # json.dumps escapes C0 controls; the rest of _UNSAFE becomes \uNNNN (still valid JSON)
        return redact(_UNSAFE.sub(_escape_json_char, json.dumps(out, ensure_ascii=False)))


def setup_logging(level: str | None = None, fmt: str | None = None, stream=None) -> None:
    """Configure the root logger once (idempotent: replaces our previous handler)."""
    level = (level or os.environ.get("EXOCLAW_LOG") or "info").upper()
    fmt = (fmt or os.environ.get("EXOCLAW_LOG_FORMAT") or "text").lower()
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_exoclaw", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._exoclaw = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(_ContextFilter())
    root.addHandler(handler)
    root.setLevel(getattr(logging, level, logging.INFO))
    # what our format never shows need not be collected for every record
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # aiohttp's access log is noisy and carries query strings: keep it at warning
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


quote = log_value  # a value for a ``key=value`` pair (the plugins' helper, one rule for all)


class Every:
    """Log a repeated event at most once per ``interval_s``; the line says how many it stands for.

    ``every(logging.WARNING, "event=accept_failed error=%s", err)`` logs the
    first occurrence at once; the ones within the next ``interval_s`` are only
    counted, and the next line logged carries ``repeated=N`` (how many were
    folded into it since the previous line). For events a client can cause
    by the thousand (issue 16: 155,775 accept-error lines in 10 s).
    """

    def __init__(self, logger: logging.Logger, interval_s: float = 10.0, *,
                 clock: Callable[[], float] = time.monotonic):
        self.logger, self.interval_s, self.clock = logger, interval_s, clock
        self._next = float("-inf")
        self._folded = 0

    def __call__(self, level: int, msg: str, *args: Any) -> bool:
        """Log (and return True) or count the event."""
        now = self.clock()
        if now < self._next:
            self._folded += 1
            return False
        folded, self._folded, self._next = self._folded, 0, now + self.interval_s
        if folded:
            self.logger.log(level, msg + " repeated=%d", *args, folded)
        else:
            self.logger.log(level, msg, *args)
        return True
