"""A plugin's own table: declared, validated with located messages, handed to that plugin only."""

from __future__ import annotations

import pytest

from exoclaw_hooks import ConfigError, SettingsTable, hookimpl
from exoclaw_hooks.config import Int, Section, Str
from tests.harness import make_settings, parse_config, running_gateway


class JournalSchema(Section):
    path = Str(required=True)
    keep_days = Int(minimum=1)


class Journal:
    def __init__(self):
        self.received = []

    @hookimpl
    def register_settings(self, register):
        register(SettingsTable("journal", JournalSchema, apply=self.received.append))


class SameTableOtherSchema:
    @hookimpl
    def register_settings(self, register):
        register(SettingsTable("journal", Section, apply=lambda v: None))


class BrokenSettings:
    @hookimpl
    def register_settings(self, register):
        raise RuntimeError("cannot declare")

    @hookimpl
    def status_info(self, host):
        return {"broken": "still here"}


def test_the_plugin_receives_only_its_validated_table():
    journal = Journal()
    _, built = parse_config('[journal]\npath = "/var/log/a"\nkeep_days = 3\n[budgets]\ndaily = 5\n',
                            plugins=[("journal", journal)])
    assert journal.received == [{"path": "/var/log/a", "keep_days": 3}]
    assert built["journal"] == {"path": "/var/log/a", "keep_days": 3}


def test_an_absent_table_is_handed_over_empty():
    journal = Journal()
    parse_config("", plugins=[("journal", journal)])
    assert journal.received == [{}]


def test_a_third_party_table_is_located_and_names_its_plugin():
    with pytest.raises(ConfigError) as info:
        parse_config('[journal]\nkeep_days = 0\nkeep = 1\n', plugins=[("journal", Journal())])
    assert info.value.problems == [
        "config.toml: [journal] keep_days: must be a positive integer (got 0) (plugin journal)",
        'config.toml: [journal] keep: unknown key (did you mean "keep_days"?) (plugin journal)',
        "config.toml: [journal] path: is required (plugin journal)",
    ]


def test_a_table_nobody_declares_is_unknown():
    with pytest.raises(ConfigError) as info:
        parse_config("[jornal]\npath = 1\n", plugins=[("journal", Journal())])
    assert info.value.problems == ["config.toml: [jornal]: unknown table (did you mean [journal]?)"]


def test_two_plugins_claiming_one_table_is_an_error_naming_both():
    with pytest.raises(ConfigError) as info:
        parse_config("", plugins=[("journal", Journal()), ("other", SameTableOtherSchema())])
    (problem,) = info.value.problems
    assert "journal" in problem and "other" in problem and "[journal]" in problem


def test_a_plugin_may_not_take_a_core_table():
    class Greedy:
        @hookimpl
        def register_settings(self, register):
            register(SettingsTable("gateway", Section, apply=lambda v: None))

    with pytest.raises(ConfigError, match=r"plugin greedy declares the table \[gateway\]"):
        parse_config("", plugins=[("greedy", Greedy())])


async def test_a_plugin_whose_settings_hook_raises_is_reported_and_left_out(tmp_path):
    settings = make_settings(data_dir=tmp_path)
    async with running_gateway(settings, plugins=[("broken", BrokenSettings())]) as gw:
        record = next(r for r in gw.rt.pm.records if r.name == "broken")
        assert record.status == "failed" and "register_settings failed" in record.reason
        async with gw.client() as c:
            status = (await c.request("status"))["result"]
            frames = await c.chat({"channel": "t", "account": "a", "content": "still serving"})
    assert "broken" not in status  # left out: its other hooks do not run
    assert frames[-1]["event"] == "done"
