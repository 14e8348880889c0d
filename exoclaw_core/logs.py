"""Single-line structured logs, a request id per turn, and secret redaction.

``EXOCLAW_LOG`` sets the level (default ``info``), ``EXOCLAW_LOG_FORMAT=json``
switches from ``key=value`` text to one JSON object per line. The redaction
filter sits on the handler, so it applies to every line whichever logger
wrote it, at every level.
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


_KV = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = dt.datetime.fromtimestamp(record.created, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        msg = record.getMessage()
        line = f"{ts}Z level={record.levelname.lower()} logger={record.name} rid={getattr(record, 'request_id', '-')} {msg}"
        if record.exc_info:
            line += " exc=" + json.dumps(self.formatException(record.exc_info))
        return redact(" ".join(line.splitlines()))


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
        return redact(json.dumps(out, ensure_ascii=False))


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


def quote(value: object) -> str:
    """A value for a ``key=value`` pair: quoted when it has spaces or quotes."""
    text = str(value)
    if not text or any(c in text for c in ' "=\n\t'):
        return json.dumps(text, ensure_ascii=False)
    return text
