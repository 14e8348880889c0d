"""Graceful shutdown: turns in flight finish within the grace period, sockets close with 1001."""

from __future__ import annotations

import asyncio

import aiohttp

from tests.harness import make_settings, running_gateway, text_of


async def test_turn_in_flight_finishes_then_socket_closes_going_away(tmp_path):
    settings = make_settings(data_dir=tmp_path, echo_delay=0.05)
    gw_cm = running_gateway(settings)
    gw = await gw_cm.__aenter__()
    session = aiohttp.ClientSession()
    try:
        ws = await session.ws_connect(gw.url)
        await ws.receive()
        await ws.send_json({"id": "1", "method": "chat.send",
                            "params": {"channel": "t", "account": "a", "content": "finish me please " * 3}})
        first = await ws.receive_json()
        assert first["event"] == "text"
        closing = asyncio.create_task(gw_cm.__aexit__(None, None, None))
        frames = [first]
        while True:
            msg = await ws.receive(timeout=10)
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            frames.append(msg.json())
        assert frames[-1]["event"] == "done" and "finish me please" in text_of(frames)
        assert ws.close_code == 1001
        await closing
    finally:
        await session.close()


async def test_grace_period_cancels_a_stuck_turn_without_a_partial_record(tmp_path):
    from exoclaw_hooks.testing import Script, ScriptedProvider
    from tests.core.agent.test_turns import Scripted

    provider = ScriptedProvider()
    provider.enqueue(Script(text=["never"], gate=asyncio.Event()))  # waits forever
    settings = make_settings(data_dir=tmp_path, provider="scripted", model="m")
    store_holder = {}
    async with running_gateway(settings, plugins=[("s", Scripted(provider))], persistent=True) as gw:
        gw.rt.shutdown_grace_s = 0.2
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(gw.url)
            await ws.receive()
            await ws.send_json({"id": "1", "method": "chat.send",
                                "params": {"channel": "t", "account": "a", "content": "stuck"}})
            for _ in range(100):
                if provider.history:
                    break
                await asyncio.sleep(0.01)
        store_holder["rt"] = gw.rt
    assert not store_holder["rt"].turns
    async with running_gateway(settings, persistent=True) as gw:
        async with gw.client() as c:
            assert (await c.request("session.list"))["result"] == []


async def test_a_turn_cut_by_shutdown_still_ends_with_error_and_done(tmp_path):
    from exoclaw_hooks.testing import Script, ScriptedProvider
    from tests.core.agent.test_turns import Scripted

    provider = ScriptedProvider()
    provider.enqueue(Script(text=["never"], gate=asyncio.Event()))
    settings = make_settings(data_dir=tmp_path, provider="scripted", model="m")
    gw_cm = running_gateway(settings, plugins=[("s", Scripted(provider))])
    gw = await gw_cm.__aenter__()
    gw.rt.shutdown_grace_s = 0.2
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(gw.url)
        await ws.receive()
        await ws.send_json({"id": "1", "method": "chat.send",
                            "params": {"channel": "t", "account": "a", "content": "stuck"}})
        while not provider.history:
            await asyncio.sleep(0.01)
        closing = asyncio.create_task(gw_cm.__aexit__(None, None, None))
        frames = []
        while True:
            msg = await ws.receive(timeout=10)
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            frames.append(msg.json())
        await closing
    assert [f["event"] for f in frames] == ["error", "done"]
    assert frames[0]["data"] == "turn cancelled: the gateway is shutting down"
    assert ws.close_code == 1001


class SlowLearner:
    """An ``after_turn`` observer that takes longer than the shutdown grace period."""

    def __init__(self):
        from exoclaw_hooks import hookimpl

        self.started = asyncio.Event()

        @hookimpl
        async def after_turn(turn):
            self.started.set()
            await asyncio.sleep(30)

        self.after_turn = after_turn


async def test_cancelled_while_learning_the_stream_keeps_its_single_done(tmp_path):
    learner = SlowLearner()
    settings = make_settings(data_dir=tmp_path)
    gw_cm = running_gateway(settings, plugins=[("slow", learner)])
    gw = await gw_cm.__aenter__()
    gw.rt.shutdown_grace_s = 0.2
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(gw.url)
        await ws.receive()
        await ws.send_json({"id": "1", "method": "chat.send",
                            "params": {"channel": "t", "account": "a", "content": "learn slowly"}})
        frames = []
        while not frames or frames[-1].get("event") != "done":
            frames.append(await ws.receive_json(timeout=10))
        await asyncio.wait_for(learner.started.wait(), 10)
        closing = asyncio.create_task(gw_cm.__aexit__(None, None, None))
        while True:
            msg = await ws.receive(timeout=10)
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            frames.append(msg.json())
        await closing
    events = [f["event"] for f in frames]
    assert events.count("done") == 1 and events[-1] == "done" and "error" not in events
