"""exoclaw_hooks.log_value: a plugin's value keeps a key=value log line parseable."""

from __future__ import annotations

import json
import logging

from exoclaw_hooks import log_value
from tests.harness import captured_log


def test_a_plain_word_stays_bare():
    assert log_value("telegram") == "telegram" and log_value(42) == "42" and log_value("é-ü") == "é-ü"


def test_anything_that_could_break_the_line_is_json_quoted():
    for raw in ["", "two words", 'say "hi"', "a=b", "back\\slash", "line\nbreak", "tab\there", "esc\x1b[31m",
                "bidi\u202eevil", "nbsp\u00a0", "sep\u2028"]:
        quoted = log_value(raw)
        assert quoted.startswith('"') and json.loads(quoted) == raw, raw


def test_the_gateway_log_keeps_a_quoted_value_on_one_line():
    with captured_log() as stream:
        logging.getLogger("exoclaw.test").warning("event=x account=%s n=1", log_value("a b=c\nd"))
    line = stream.getvalue().strip().splitlines()[-1]
    assert line.count("\n") == 0 and 'account="a b=c\\nd" n=1' in line
