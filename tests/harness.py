"""Test harness: a real gateway on a random loopback port and a real WebSocket client.

The gateway and the client are the plugin author's kit's (``exoclaw_hooks.testing.gateway``);
this module adds what the project's own tests need: settings built directly.

::

    async with running_gateway(settings) as gw:
        async with gw.client() as c:
            frames = await c.chat({"channel": "t", "account": "a", "content": "hi"})
"""

from __future__ import annotations

import dataclasses
import io
import os
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Iterable, Iterator

from exoclaw_core.config import GatewayConfig, Settings
from exoclaw_core.logs import setup_logging
from exoclaw_core.plugins import make_plugin_manager
from exoclaw_core.store.sqlite import open_store
from exoclaw_hooks import AgentConfig
from exoclaw_hooks.testing.gateway import Gateway, Reply, WSClient, events_of, serve, text_of

__all__ = [
    "Gateway", "Reply", "WSClient", "as_table", "events_of", "make_settings", "parse_config", "parse_settings",
    "running_gateway", "text_of", "captured_log",
]


#: the [memory] table of tests that do not set one
OFFLINE_MEMORY = {"extractor": "rules"}


def make_settings(
    *,
    provider: str = "echo",
    model: str = "echo",
    agents: Iterable[AgentConfig] = (),
    data_dir: str | Path = ".",
    echo_delay: float = 0.0,
    **kwargs: Any,
) -> Settings:
    """Settings built directly (no file): one default agent plus ``agents``.

    Any other keyword is a plugin's table as TOML would give it, e.g.
    ``budgets={"session": 100}``, ``plugins=[{"name": "echo", "path": ...}]``.
    """
    default = AgentConfig(
        id="default", provider=provider, model=model,
        options={"chunk_delay_s": echo_delay} if provider == "echo" else {},
    )
    all_agents = {default.id: default}
    for a in agents:
        all_agents[a.id] = a
    gateway = kwargs.pop("gateway", GatewayConfig(port=0))
    core = {k: kwargs.pop(k) for k in ("hooks", "config_dir", "config_path", "env", "default_agent") if k in kwargs}
    core.setdefault("default_agent", "default")
    # tests that are not about memory learn offline: no provider gets extraction calls it did not script
    kwargs.setdefault("memory", OFFLINE_MEMORY)
    sections = {name: as_table(value) for name, value in kwargs.items()}
    return Settings(gateway=gateway, agents=all_agents, data_dir=str(data_dir), sections=sections, **core)


def as_table(value: Any) -> Any:
    """A plugin's config object (its own dataclass) written as the TOML data it comes from.

    Keys left at ``None`` are left out, tuples become lists; plain data passes.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: as_table(getattr(value, f.name)) for f in dataclasses.fields(value)
                if getattr(value, f.name) is not None}
    if isinstance(value, (list, tuple)):
        return [as_table(v) for v in value]
    if isinstance(value, dict) or hasattr(value, "items"):
        return {k: as_table(v) for k, v in value.items()}
    return value


@contextmanager
def captured_log(level: str = "debug", fmt: str = "text") -> Iterator[io.StringIO]:
    """Every log line, formatted as ``exoclaw serve`` writes them, into a string while inside."""
    stream = io.StringIO()
    setup_logging(level, fmt, stream=stream)
    try:
        yield stream
    finally:
        setup_logging("warning", "text")


@asynccontextmanager
async def running_gateway(
    settings: Settings,
    *,
    plugins: Iterable[tuple[str, Any]] = (),
    load_entrypoints: bool = True,
    store: Any = None,
    persistent: bool = False,
    listener: bool = False,
    **rt_kwargs: Any,
) -> AsyncIterator[Gateway]:
    """A gateway for ``settings`` built directly (the kit's ``run_gateway`` reads TOML instead).

    ``listener=True`` serves through ``exoclaw_core.gateway.listener`` (the connection guards) as
    ``exoclaw serve`` does, on ``settings.gateway``'s bind and port; else through aiohttp's TestServer.
    """
    if not load_entrypoints and settings.sections.get("memory") == OFFLINE_MEMORY:
        # no memory plugin will be there to own the table make_settings added
        settings = dataclasses.replace(settings, sections={k: v for k, v in settings.sections.items() if k != "memory"})
    pm = make_plugin_manager(settings, load_entrypoints=load_entrypoints, plugins=plugins)
    if store is None:
        store = open_store(Path(settings.data_dir) if persistent else None)
    async with serve(settings, pm, store, listener=listener, **rt_kwargs) as gw:
        yield gw


def parse_config(
    text: str, *, env: dict[str, str] | None = None, config_dir: str = ".", path_label: str = "config.toml",
    overrides: dict[str, Any] | None = None, plugins: Iterable[tuple[str, Any]] = (),
) -> tuple[Settings, dict[str, Any]]:
    """A config file's text validated exactly as ``serve`` would: the settings, and each plugin table as built."""
    from exoclaw_core.bootstrap import check_source
    from exoclaw_core.config.load import Source

    settings, pm = check_source(
        Source(text, path_label, config_dir, None), env={} if env is None else env, overrides=overrides,
        plugins=plugins,
    )
    return settings, pm.sections


def parse_settings(text: str, **kwargs: Any) -> Settings:
    return parse_config(text, **kwargs)[0]


# ---------------------------------------------------------------- PostgreSQL (the store plugin's tests)

#: the server the PostgreSQL tests use; each test makes its own database there and drops it
POSTGRES_ADMIN_URL = os.environ.get("EXOCLAW_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def postgres_unreachable() -> str | None:
    """Why the test PostgreSQL cannot be used, or ``None`` when it answers."""
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - a dependency
        return f"psycopg is not installed ({exc})"
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {' '.join(str(exc).split())}"
    return None


def require_postgres() -> None:
    """Skip the test when PostgreSQL is not reachable, with the reason; fail instead under
    ``EXOCLAW_REQUIRE_POSTGRES=1`` (CI), so a missing server is never a silent skip there."""
    import pytest

    reason = postgres_unreachable()
    if reason is None:
        return
    if os.environ.get("EXOCLAW_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"{reason} (EXOCLAW_REQUIRE_POSTGRES=1)", pytrace=False)
    pytest.skip(f"{reason}; start it, or set EXOCLAW_REQUIRE_POSTGRES=1 to make this a failure")


@contextmanager
def postgres_database() -> Iterator[str]:
    """A new database with a random name on the test server (its URL); dropped afterwards, connections and all."""
    import secrets

    import psycopg

    require_postgres()
    name = f"exoclaw_test_{secrets.token_hex(6)}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class TcpProxy:
    """A TCP relay on 127.0.0.1 to another local port that a test can cut and restore (a database "going away").

    ``cut()`` closes every relayed connection and refuses new ones; ``restore()`` accepts again.
    """

    def __init__(self, target_port: int) -> None:
        import asyncio

        self.target_port = target_port
        self.port = 0
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[Any] = set()

    async def start(self) -> "TcpProxy":
        import asyncio

        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _relay(self, reader: Any, writer: Any) -> None:
        import asyncio

        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: Any, dst: Any) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, ConnectionError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    async def cut(self) -> None:
        """Close the listener and every relayed connection."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()

    async def restore(self) -> None:
        await self.start()

    async def close(self) -> None:
        await self.cut()
