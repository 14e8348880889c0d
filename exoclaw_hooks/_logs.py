"""Writing values into the gateway's ``key=value`` log lines."""

from __future__ import annotations

import json


def log_value(value: object) -> str:
    """``value`` for a ``key=value`` log pair: bare when it is one plain word, else JSON-quoted.

    ``log.info("event=sync_failed account=%s", log_value(account))`` keeps the
    line parseable whatever the account's name holds (spaces, quotes, ``=``,
    newlines, invisible characters).
    """
    text = str(value)
    if not text or any(c in text for c in ' "=\\') or not text.isprintable():
        return json.dumps(text, ensure_ascii=False)
    return text
