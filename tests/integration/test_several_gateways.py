"""Three `exoclaw serve` on one PostgreSQL, one killed with SIGKILL under load (issue 19).

50 clients send interleaved turns for 10 shared sessions to random gateways,
and webhooks arrive at random gateways, while one gateway is killed. Then:
each session's history is in send order, no acknowledged turn is lost or
doubled, and every accepted webhook is replied exactly once (the killed
gateway's deliveries are taken over after their lease).
"""

from __future__ import annotations

import asyncio
import collections
import random
import re
import time

import psycopg

from tests.channels.conftest import (
    TOKEN,
    WEBHOOK_SECRET,
    FakePlatform,
    Serve,
    telegram_update,
    wasm_build,  # noqa: F401 - the session fixture
    write_config,
)
from tests.harness import postgres_database
from tests.serving import clean_env, shared_session_load

CLIENTS, TURNS, SESSIONS, HOOKS = 50, 6, 10, 12
LEASE_S = 2


def post(gw: Serve, update: dict) -> int:
    try:
        return gw.post_update(update)[0]
    except OSError:  # the gateway was killed: not acknowledged, the platform would retry
        return 0


def test_three_gateways_one_killed_mid_load_lose_and_double_nothing(tmp_path, wasm_build):  # noqa: F811
    with postgres_database() as url, FakePlatform() as fake:
        cfg = write_config(tmp_path, wasm_build["telegram"], fake.base, chunk_delay_s=0.005)
        # the whole session in every turn's context: a turn that ran beside another of its session would
        # have seen fewer messages than its seq says
        cfg.write_text(cfg.read_text() + f"\n[store]\nlease_s = {LEASE_S}\n\n[memory]\nepisodic_window = 100\n")
        env = clean_env(tmp_path, TG_TOKEN_VAR=TOKEN, TG_SECRET_VAR=WEBHOOK_SECRET, EXOCLAW_STORE_URL=url)
        gateways = [Serve(tmp_path, cfg, env, life) for life in range(3)]
        alive = list(gateways)
        victim = gateways[2]
        hooks: dict[int, int] = {}
        try:
            async def load():
                loop = asyncio.get_running_loop()

                async def webhooks() -> None:
                    for k in range(HOOKS):
                        gw = random.choice(alive)
                        update = telegram_update(50000 + k, chat_id=-(7000 + k), text=f"hook {k}")
                        hooks[k] = await loop.run_in_executor(None, post, gw, update)
                        await asyncio.sleep(0.05)

                async def kill_midway(count: int) -> None:
                    if count == CLIENTS * TURNS // 3 and victim in alive:
                        alive.remove(victim)
                        await loop.run_in_executor(None, victim.kill9)

                hooks_task = asyncio.create_task(webhooks())
                result = await shared_session_load(
                    lambda: [f"ws://127.0.0.1:{g.port}/ws" for g in alive],
                    clients=CLIENTS, turns=TURNS, sessions=SESSIONS, on_ack=kill_midway)
                await hooks_task
                return result

            acked, failed = asyncio.run(load())
            assert victim not in alive, "the kill never happened"
            assert len(acked) > CLIENTS * TURNS // 2, (len(acked), len(failed))
            accepted = {k for k, status in hooks.items() if status == 200}
            assert accepted
            deadline = time.monotonic() + 30 + LEASE_S  # the victim's deliveries come back after the lease
            while time.monotonic() < deadline:
                chats = collections.Counter(r["json"]["chat_id"] for r in fake.received)
                if all(chats[-(7000 + k)] >= 1 for k in accepted):
                    break
                time.sleep(0.2)
            time.sleep(LEASE_S + 1)  # time enough for a second reply to show up
            said = stored_user_messages(url)
            status = alive[0].status(tmp_path, env)
            contexts = context_sizes(url)
        finally:
            codes = [gw.stop() for gw in alive]
        victim_log = victim.log()

    assert codes == [0, 0], "the surviving gateways stop cleanly on SIGTERM (their pools closed)"
    assert f"store: postgresql {url}" in status.splitlines()  # `exoclaw status` names the store
    assert f"  store: postgresql {url}" in gateways[0].banner.splitlines()  # and so does serve's banner
    # the killed gateway did work before it died
    assert "event=turn_start" in victim_log
    # every accepted webhook replied exactly once
    chats = collections.Counter(r["json"]["chat_id"] for r in fake.received)
    assert {k: chats[-(7000 + k)] for k in accepted} == dict.fromkeys(accepted, 1), (hooks, chats)

    # each session's history: every acknowledged message once, each client's messages in send order
    seen = collections.Counter(m for messages in said.values() for m in messages)
    assert [m for m, n in seen.items() if n > 1] == [], "a message stored twice"
    for i, n in acked:
        assert seen[f"c{i}-{n}"] == 1, f"acknowledged c{i}-{n} lost"
    for session, messages in said.items():
        by_client = collections.defaultdict(list)
        for m in messages:
            client, n = map(int, re.fullmatch(r"c(\d+)-(\d+)", m).groups())
            by_client[client].append(n)
        for client, ns in by_client.items():
            assert ns == sorted(ns), f"{session}: client {client}'s messages out of order: {ns}"
    # one turn of a session at a time: each saw every earlier turn of its session (2 messages each) and its own
    for session, turns in contexts.items():
        assert [n for _, n in turns] == [2 * seq - 1 for seq, _ in turns], f"{session}: turns overlapped: {turns}"
    assert sum(len(t) for t in contexts.values()) >= len(acked)
    for life in gateways:
        assert TOKEN not in life.log() and WEBHOOK_SECRET not in life.log()


def stored_user_messages(url: str) -> dict[str, list[str]]:
    """Each load session's user messages in stored order (turn seq), read from the database itself."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            """SELECT t.session_key, m.content FROM messages AS m JOIN turns AS t ON t.id = m.turn_id
               WHERE m.role = 'user' AND t.session_key LIKE '%%:load:%%' ORDER BY t.session_key, t.seq, m.id"""
        ).fetchall()
    out: dict[str, list[str]] = collections.defaultdict(list)
    for session, content in rows:
        out[session].append(content)
    return out


def context_sizes(url: str) -> dict[str, list[tuple[int, int]]]:
    """Each load session's turns: (seq, how many messages the model saw), from the echo's reply."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            """SELECT t.session_key, t.seq, m.content FROM messages AS m JOIN turns AS t ON t.id = m.turn_id
               WHERE m.role = 'assistant' AND t.session_key LIKE '%%:load:%%' ORDER BY t.session_key, t.seq"""
        ).fetchall()
    out: dict[str, list[tuple[int, int]]] = collections.defaultdict(list)
    for session, seq, content in rows:
        seen = re.search(r"\[echo: (\d+) messages?", content)
        out[session].append((seq, int(seen.group(1)) if seen else -1))
    return out
