"""Suite-wide: which hooks the tests called through a real plugin manager (see tests/zz_meta)."""

from __future__ import annotations

import pytest

#: hook names called through ``exoclaw_core.hookcall`` or the settings collection during this run
CALLED_HOOKS: set[str] = set()


@pytest.fixture(autouse=True, scope="session")
def _record_hook_calls():
    from exoclaw_core import hookcall
    from exoclaw_core.config import plugin_tables

    patch = pytest.MonkeyPatch()

    def recording(fn, position=1):
        def wrapper(*args, **kwargs):
            CALLED_HOOKS.add(args[position])
            return fn(*args, **kwargs)
        return wrapper

    for name in ("call_all", "call_first", "call_sync", "call_pipeline"):
        patch.setattr(hookcall, name, recording(getattr(hookcall, name)))
    collect = plugin_tables.collect

    def collect_recording(*args, **kwargs):
        CALLED_HOOKS.add("register_settings")
        return collect(*args, **kwargs)

    patch.setattr(plugin_tables, "collect", collect_recording)
    yield
    patch.undo()


def pytest_collection_modifyitems(session, config, items):
    # the meta-test only judges a run of the whole suite
    testpaths = set(config.getini("testpaths"))
    config._exoclaw_whole_suite = not config.option.keyword and not config.option.markexpr and not [
        a for a in config.args if a.rstrip("/") not in testpaths | {str(config.rootpath / t) for t in testpaths}
    ]
