import json

import pytest

from exoclaw_audit import AuditPlugin
from exoclaw_hooks import ConfigError


async def test_every_turn_is_audited(exoclaw_gateway, tmp_path):
    log = tmp_path / "audit.jsonl"
    async with exoclaw_gateway(f'[audit]\npath = "{log}"\n', plugins=[AuditPlugin()]) as gw:
        reply = await gw.chat("hello there")
        assert reply.done and "hello there" in reply.text
        assert await gw.request("audit.count") == 1
    (entry,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert entry["session"] == "default:test:tester:main" and entry["said_chars"] == 11
    assert "said" not in entry  # sizes only, unless include_text


async def test_a_wrong_table_is_a_located_error(exoclaw_gateway):
    with pytest.raises(ConfigError) as info:
        async with exoclaw_gateway("[audit]\ninclude_text = 1\n", plugins=[AuditPlugin()]):
            pass
    assert "config.toml: [audit] include_text: must be true or false (got 1)" in info.value.problems[0]
