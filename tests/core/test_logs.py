"""exoclaw_core/logs.py: what clients put in a log line is escaped, once, at the formatter; repeated events fold."""

from __future__ import annotations

import json
import logging

import pytest

from exoclaw_core.logs import Every, escape, quote, register_secret
from tests.harness import captured_log

HOSTILE = "a\x00b\x1b[31mred\x1b[0m\r\nlevel=error fake\u2028line\u202eevil\x85\x7f\ud800end"


@pytest.fixture
def text_log():
    with captured_log() as stream:
        yield stream


def _raw_controls(text: str) -> list[str]:
    return [c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) <= 0x9f
            or c in "\u2028\u2029\u202e" or 0xD800 <= ord(c) <= 0xDFFF]


def test_client_text_reaches_a_text_line_escaped_and_on_one_line(text_log):
    logging.getLogger("exoclaw.t").info("event=x peer=%s", quote(HOSTILE))
    logging.getLogger("aiohttp.t").warning("raw %s", HOSTILE)  # a library that does not quote
    out = text_log.getvalue()
    assert out.count("\n") == 2 and not _raw_controls(out)
    first, second = out.splitlines()
    # quoted (JSON string escapes), then the formatter's escapes for what JSON leaves raw
    assert "\\u0000" in first and "\\u001b[31m" in first and "\\r\\n" in first and "\\u2028" in first
    assert "\\u202e" in first and "\\ud800" in first and "\\x85" in first and "\\x7f" in first
    assert first.index('peer="') < first.index("level=error fake") < first.rindex('end"')
    # not quoted by its logger: still one line, every control written as an escape
    assert "a\\x00b\\x1b[31mred\\x1b[0m\\r\\nlevel=error fake\\u2028line\\u202eevil\\x85\\x7f\\ud800end" in second


def test_json_lines_stay_valid_json_with_escapes():
    with captured_log("debug", "json") as stream:
        logging.getLogger("exoclaw.t").info("event=x peer=%s", quote(HOSTILE))
    line = stream.getvalue()
    assert line.count("\n") == 1 and not _raw_controls(line)
    record = json.loads(line)
    assert record["event"] == "x" and record["msg"].startswith('event=x peer="a')


def test_escape_keeps_plain_text_and_escapes_what_it_must():
    assert escape("plain line é ✓ 日本") == "plain line é ✓ 日本"
    assert escape("tab\there") == "tab\\there"
    assert escape("\ud83d") == "\\ud83d" and escape("😀") == "😀"


def test_quote_quotes_anything_escaped_or_ambiguous():
    assert quote("simple") == "simple"
    assert quote("a b") == '"a b"' and quote("") == '""'
    assert quote("esc\x1b").startswith('"') and quote("back\\slash") == '"back\\\\slash"'


def test_secrets_are_redacted_before_escaping(text_log):
    register_secret("sk-test-secret-for-escaping-123")
    logging.getLogger("x").error("key\x1b=%s", "sk-test-secret-for-escaping-123")
    out = text_log.getvalue()
    assert "sk-test-secret" not in out and "[REDACTED]" in out


def test_every_logs_once_per_interval_and_counts_the_rest(text_log):
    now = [100.0]
    every = Every(logging.getLogger("exoclaw.t"), 10.0, clock=lambda: now[0])
    logged = [every(logging.ERROR, "event=accept_failed n=%d", i) for i in range(5000)]
    assert logged.count(True) == 1
    now[0] += 10.0
    assert every(logging.ERROR, "event=accept_failed n=%d", 5000)
    lines = [l for l in text_log.getvalue().splitlines() if "accept_failed" in l]
    assert len(lines) == 2
    assert "n=0" in lines[0] and "repeated" not in lines[0]
    assert lines[1].endswith("n=5000 repeated=4999")
