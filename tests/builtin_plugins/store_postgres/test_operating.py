"""Operating the PostgreSQL store: chosen by URL, migrations racing, a database lost and back, passwords hidden."""

from __future__ import annotations

import asyncio
import threading
from urllib.parse import urlsplit

import psycopg
import pytest

from builtin_plugins.store_postgres.schema import MIGRATIONS
from builtin_plugins.store_postgres.store import open_postgres
from exoclaw_hooks import StoreUnavailable
from exoclaw_hooks.testing import run_gateway
from tests.harness import TcpProxy, postgres_database, require_postgres
from tests.serving import EXE, clean_env

SECRET = "hunter2-not-shown"  # trust auth on the test server: a password in the URL is accepted and unused


def with_password(url: str, port: int | None = None) -> str:
    parts = urlsplit(url)
    host = f"{parts.username}:{SECRET}@127.0.0.1:{port or parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


async def test_a_gateway_on_postgresql_answers_and_shows_the_store_without_its_password():
    with postgres_database() as url:
        config = f'[store]\nurl = "{with_password(url)}"\n'
        async with run_gateway(config) as gw:
            assert type(gw.rt.store).__name__ == "PostgresStore"
            reply = await gw.chat("hello there")
            assert reply.text
            status = await gw.request("status")
            assert status["store"]["kind"] == "postgresql"
            assert status["store"]["url"] == url.replace("postgres@", "postgres@", 1)
            assert SECRET not in str(status)
            assert status["sessions"] == 1
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 2


def test_gateways_starting_at_once_migrate_once():
    with postgres_database() as url:
        stores, errors = [], []

        def start() -> None:
            try:
                stores.append(open_postgres(url))
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=start) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        for store in stores:
            store.close()
        with psycopg.connect(url) as conn:
            recorded = conn.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
            assert recorded == [(version, name) for version, name, _ in MIGRATIONS]  # each once


def test_unreachable_postgresql_at_start_is_one_sentence_without_the_password(tmp_path):
    import subprocess

    require_postgres()
    url = f"postgresql://postgres:{SECRET}@127.0.0.1:1/exoclaw"
    with pytest.raises(StoreUnavailable) as caught:
        open_postgres(url)
    assert "postgresql://postgres@127.0.0.1:1/exoclaw" in str(caught.value) and SECRET not in str(caught.value)
    done = subprocess.run([*EXE, "serve", "--port", "0"], env=clean_env(tmp_path, EXOCLAW_STORE_URL=url),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("exoclaw: cannot reach the PostgreSQL store "), done.stderr
    assert "postgresql://postgres@127.0.0.1:1/exoclaw" in lines[0]
    assert SECRET not in done.stderr + done.stdout
    assert "listening on" not in done.stdout


async def test_a_lost_database_fails_turns_clearly_and_the_gateway_recovers_when_it_returns():
    with postgres_database() as url:
        proxy = await TcpProxy(urlsplit(url).port).start()
        try:
            config = f'[store]\nurl = "{with_password(url, proxy.port)}"\n'
            async with run_gateway(config) as gw:
                assert (await gw.chat("first", peer="p")).text
                await proxy.cut()
                failed = await gw.chat("while it is gone", peer="p")
                assert failed.error, failed
                assert failed.error.startswith("storage unavailable, the turn was not stored: "), failed.error
                assert SECRET not in str(failed.error)
                with pytest.raises(StoreUnavailable, match="cannot be reached"):
                    await gw.rt.store.ping()
                await proxy.restore()
                for _ in range(50):  # the pool reconnects: no restart of the gateway
                    try:
                        await gw.rt.store.ping()
                        break
                    except StoreUnavailable:
                        await asyncio.sleep(0.1)
                again = await gw.chat("after it came back", peer="p")

                assert again.text and not again.error
                [session] = await gw.rt.store.list_sessions()
                said = [h["content"] for h in await gw.rt.store.history(session.key) if h["role"] == "user"]
                assert said == ["first", "after it came back"]  # the failed turn stored nothing
        finally:
            await proxy.close()


def test_exoclaw_usage_reads_the_shared_figures(tmp_path):
    from exoclaw_hooks import UsageRecord
    from tests.serving import run_cli

    with postgres_database() as url:
        async def record() -> None:
            store = open_postgres(url)
            try:
                for gateway_n in range(3):  # as three gateways would have recorded them
                    await store.record_usage(UsageRecord(
                        "2026-11-25T10:00:00Z", f"default:ws:a:s{gateway_n}", "default", "echo", "echo", 100, 20))
            finally:
                await store.aclose()

        asyncio.run(record())
        done = run_cli(tmp_path, "usage", "--json", env=clean_env(tmp_path, EXOCLAW_STORE_URL=with_password(url)))
        assert done.returncode == 0, done.stderr
        import json

        [row] = json.loads(done.stdout)
        assert (row["group"], row["calls"], row["input_tokens"], row["output_tokens"]) == ("echo:echo", 3, 300, 60)
        assert SECRET not in done.stdout + done.stderr
        # a config file's [store] url is read too
        config = tmp_path / "config.toml"
        config.write_text(f'[store]\nurl = "{url}"\n')
        done = run_cli(tmp_path, "usage", "--config", str(config), "--by", "session")
        assert done.returncode == 0, done.stderr
        assert "default:ws:a:s2" in done.stdout


async def test_budget_reservations_are_exact_across_gateways():
    with postgres_database() as url:
        gateways = [await asyncio.to_thread(open_postgres, url) for _ in range(3)]
        try:
            granted = await asyncio.gather(*(
                gateways[i % 3].budget_reserve(f"gw-{i % 3}", {"daily:2026-12-04": 3000}, 250, hold_s=600)
                for i in range(30)))
            assert sum(rid is not None for rid, _ in granted) == 12  # 12 x 250 = 3000, not one more
            ids = [rid for rid, _ in granted if rid is not None]
            await asyncio.gather(*(gateways[n % 3].budget_settle(rid, ["daily:2026-12-04"], 100)
                                   for n, rid in enumerate(ids)))
            assert await gateways[0].budget_counters(["daily:2026-12-04"]) == {"daily:2026-12-04": (1200, 0)}
        finally:
            for store in gateways:
                await store.aclose()
