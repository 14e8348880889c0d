"""[store] url / $EXOCLAW_STORE_URL picks the store a plugin registered for the URL's scheme (register_stores)."""

from __future__ import annotations

import aiohttp
import pytest

from exoclaw_core.bootstrap import check_source, open_runtime
from exoclaw_core.config.load import Source
from exoclaw_core.store import SQLiteStore
from exoclaw_hooks import ConfigError, StoreUnavailable, hookimpl
from exoclaw_hooks.testing import run_gateway

SECRET = "s3cret-pa55word"


class FakeStore(SQLiteStore):
    """The SQLite store in memory, answering to another URL; ``down`` makes it unreachable."""

    def __init__(self, url: str) -> None:
        super().__init__(None)
        self.url = url
        self.down = False

    def describe(self) -> dict:
        return {"kind": "fake", "url": self.url, "persistent": True}

    async def ping(self) -> None:
        if self.down:
            raise StoreUnavailable("the fake database at fake://db does not answer")
        await super().ping()


class FakeStorePlugin:
    def __init__(self) -> None:
        self.opened: list[FakeStore] = []

    @hookimpl
    def register_stores(self, register):
        def factory(url: str, *, data_dir: str) -> FakeStore:
            if "unreachable" in url:
                raise OSError(f"connection to {url} refused")
            self.opened.append(FakeStore(url))
            return self.opened[-1]

        register("fake", factory)


def load(text: str, env=None, plugin=None):
    return check_source(Source(text, "config.toml", ".", None), env=env or {},
                        plugins=[("fakestore", plugin or FakeStorePlugin())])


def test_an_unknown_scheme_is_a_located_config_error():
    with pytest.raises(ConfigError) as caught:
        load('[store]\nurl = "mysql://u:pw@h/db"\n')
    [problem] = caught.value.problems
    assert problem.startswith("config.toml: [store] url: has an unknown scheme")
    assert '"mysql"' in problem and "fake" in problem and "pw" not in problem
    with pytest.raises(ConfigError) as caught:
        load("", env={"EXOCLAW_STORE_URL": "mysql://u:pw@h/db"})
    assert caught.value.problems[0].startswith("config.toml: $EXOCLAW_STORE_URL: has an unknown scheme")
    with pytest.raises(ConfigError, match=r"\[store\] url: must be empty .* or a URL"):
        load('[store]\nurl = "just-a-name"\n')


def test_the_environment_wins_and_empty_means_sqlite(tmp_path):
    settings, _ = load('[store]\nurl = "fake://file"\n', env={"EXOCLAW_STORE_URL": "fake://env"})
    assert settings.store_url == "fake://env"
    assert SECRET not in repr(settings)
    settings, pm = load("", env={"EXOCLAW_HOME": str(tmp_path)})
    assert settings.store_url == ""
    rt = open_runtime(settings, pm)
    try:
        assert rt.store_status()["kind"] == "sqlite"
    finally:
        rt.store.close()


def test_a_store_that_cannot_be_opened_is_an_error_without_the_password():
    settings, pm = load(f'[store]\nurl = "fake://user:{SECRET}@unreachable/db"\n')
    with pytest.raises(StoreUnavailable) as caught:
        open_runtime(settings, pm)
    message = str(caught.value)
    assert "fake://user@unreachable/db" in message
    assert SECRET not in message


async def test_status_shows_the_store_without_password_and_readyz_follows_the_database():
    plugin = FakeStorePlugin()
    config = f'[store]\nurl = "fake://exoclaw:{SECRET}@db.internal:5432/exoclaw"\n'
    async with run_gateway(config, plugins=[plugin]) as gw:
        [store] = plugin.opened
        assert gw.rt.store is store
        status = await gw.request("status")
        assert status["store"] == {"kind": "fake", "url": "fake://exoclaw@db.internal:5432/exoclaw", "persistent": True}
        assert SECRET not in str(status)
        base = gw.url.replace("ws://", "http://").rsplit("/ws", 1)[0]
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/readyz") as response:
                assert response.status == 200
            store.down = True
            async with http.get(f"{base}/readyz") as response:
                assert response.status == 503
                body = await response.json()
                assert body["ready"] is False and "does not answer" in body["reason"]
            store.down = False
            async with http.get(f"{base}/readyz") as response:
                assert response.status == 200


def test_status_line_names_the_store():
    from exoclaw_core.cli.status_cmd import format_status

    text = format_status({"version": "x", "store": {"kind": "postgresql", "url": "postgresql://u@h/db"}})
    assert "store: postgresql postgresql://u@h/db" in text.splitlines()
