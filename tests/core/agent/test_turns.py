"""The agent loop through a real gateway: lanes, disconnects, failures, retries, fallback, isolation."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from exoclaw_core.agent.lanes import Lanes
from exoclaw_hooks import AgentConfig, ProviderError, ProviderSettings, ToolCall, Usage, hookimpl
from exoclaw_hooks.testing import Script, ScriptedProvider
from tests.harness import events_of, make_settings, running_gateway, text_of


class Scripted:
    """A test plugin registering a scripted provider under a name."""

    def __init__(self, provider: ScriptedProvider, name: str = "scripted"):
        self.provider, self.name = provider, name

    @hookimpl
    def register_providers(self, register):
        register(self.name, self.provider.factory)


def scripted_settings(tmp_path, **kw):
    return make_settings(data_dir=tmp_path, provider="scripted", model="m1", **kw)


def msg(content, account="alice", peer="main"):
    return {"channel": "test", "account": account, "peer": peer, "content": content}


async def test_one_session_is_fifo_across_connections_while_another_runs(tmp_path):
    # the echo provider with pauses: each turn takes a while
    settings = make_settings(data_dir=tmp_path, echo_delay=0.03)
    async with running_gateway(settings) as gw:
        async with gw.client() as a, gw.client() as b, gw.client() as a2, gw.client() as other:
            t0 = time.perf_counter()
            order: list[str] = []

            async def send(client, content, account="alice"):
                frames = await client.chat(msg(content, account))
                order.append(content)
                return frames

            first = asyncio.create_task(send(a, "first"))
            await asyncio.sleep(0.01)
            second = asyncio.create_task(send(b, "second"))
            await asyncio.sleep(0.01)
            third = asyncio.create_task(send(a2, "third"))
            parallel = asyncio.create_task(send(other, "bob's", account="bob"))
            await asyncio.gather(first, second, third, parallel)
            elapsed = time.perf_counter() - t0
            history = (await a.request("chat.history", {"session": "default:test:alice:main"}))["result"]
    users = [h["content"] for h in history if h["role"] == "user"]
    assert users == ["first", "second", "third"]
    # the other session did not wait for alice's three turns
    assert order.index("bob's") < order.index("third")
    assert elapsed < 10


async def test_lanes_do_not_accumulate():
    lanes = Lanes()
    async with lanes.hold("a"):
        assert len(lanes) == 1
    assert len(lanes) == 0
    results = []

    async def turn(i):
        async with lanes.hold("k"):
            results.append(i)
            await asyncio.sleep(0)

    await asyncio.gather(*(turn(i) for i in range(50)))
    assert results == list(range(50)) and len(lanes) == 0


async def test_disconnect_mid_stream_still_completes_and_stores(tmp_path):
    settings = make_settings(data_dir=tmp_path, echo_delay=0.05)
    async with running_gateway(settings) as gw:
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(gw.url)
            await ws.receive()  # hello
            await ws.send_json({"id": "1", "method": "chat.send", "params": msg("a long goodbye " * 5)})
            first = await ws.receive_json()
            assert first["event"] == "text"
            await ws.close()
        for _ in range(200):
            if not gw.rt.turns:
                break
            await asyncio.sleep(0.02)
        async with gw.client() as c:
            history = (await c.request("chat.history", {"session": "default:test:alice:main"}))["result"]
    assert [h["role"] for h in history] == ["user", "assistant"]
    assert "a long goodbye" in history[1]["content"]


async def test_provider_failure_stores_nothing_and_ends_with_one_done(tmp_path):
    provider = ScriptedProvider()
    provider.enqueue(Script(error=ProviderError("connection refused")))
    async with running_gateway(scripted_settings(tmp_path), plugins=[("scripted", Scripted(provider))]) as gw:
        async with gw.client() as c:
            frames = await c.chat(msg("hi"))
            assert events_of(frames) == ["error", "done"]
            assert frames[0]["data"] == "provider error: connection refused"
            assert (await c.request("session.list"))["result"] == []


async def test_error_after_output_is_not_retried(tmp_path):
    provider = ScriptedProvider()
    provider.enqueue(Script(text=["partial "], error=ProviderError("overloaded", retryable=True), error_first=False))
    async with running_gateway(scripted_settings(tmp_path), plugins=[("scripted", Scripted(provider))]) as gw:
        async with gw.client() as c:
            frames = await c.chat(msg("hi"))
    assert events_of(frames) == ["text", "error", "done"]
    assert frames[1]["data"] == "provider error: overloaded"
    assert len(provider.history) == 1


async def test_retryable_errors_are_retried_then_fallback(tmp_path):
    primary, backup = ScriptedProvider(), ScriptedProvider()
    overloaded = lambda: ProviderError("overloaded", retryable=True, retry_after=0)  # noqa: E731
    primary.enqueue(Script(error=overloaded()), Script(error=overloaded()), Script(error=overloaded()))
    backup.enqueue(Script(text=["from ", "backup"], usage=Usage(3, 2)))
    agent = AgentConfig(
        id="default", provider="scripted", model="m1",
        fallback=ProviderSettings(provider="backup", model="m2"),
    )
    settings = make_settings(data_dir=tmp_path, agents=[agent])
    plugins = [("scripted", Scripted(primary)), ("backup", Scripted(backup, "backup"))]
    async with running_gateway(settings, plugins=plugins) as gw:
        async with gw.client() as c:
            frames = await c.chat(msg("hi"))
    assert text_of(frames) == "from backup" and events_of(frames)[-2:] == ["usage", "done"]
    assert len(primary.history) == 3  # first try + 2 retries
    assert backup.history[0].model == "m2"
    assert frames[-2]["data"]["input_tokens"] == 3


async def test_non_retryable_error_goes_straight_to_fallback(tmp_path):
    primary, backup = ScriptedProvider(), ScriptedProvider()
    primary.enqueue(Script(error=ProviderError("invalid x-api-key", status=401)))
    backup.enqueue(Script(text=["ok"]))
    agent = AgentConfig(id="default", provider="scripted", model="m1", fallback=ProviderSettings("backup", "m2"))
    plugins = [("scripted", Scripted(primary)), ("backup", Scripted(backup, "backup"))]
    async with running_gateway(make_settings(data_dir=tmp_path, agents=[agent]), plugins=plugins) as gw:
        async with gw.client() as c:
            frames = await c.chat(msg("hi"))
    assert text_of(frames) == "ok" and len(primary.history) == 1


class DispatchEcho:
    @hookimpl
    def list_tools(self, agent):
        from exoclaw_hooks import ToolSpec

        return [ToolSpec("shout", "upper-cases text", {"type": "object"})]

    @hookimpl
    def dispatch_tool(self, call, context):
        if call.name != "shout":
            return None

        async def run():
            from exoclaw_hooks import ToolResult

            return ToolResult(call.id, str(call.input.get("text", "")).upper())

        return run()


async def test_tool_round_trip_is_stored_and_replayed(tmp_path):
    provider = ScriptedProvider()
    provider.enqueue(
        Script(text=["Let me shout. "], tool_calls=[ToolCall("t1", "shout", {"text": "hi"}), ToolCall("t2", "nope", {})]),
        Script(text=["Done: HI"]),
        Script(text=["second turn"]),
    )
    plugins = [("scripted", Scripted(provider)), ("shout", DispatchEcho())]
    async with running_gateway(scripted_settings(tmp_path), plugins=plugins) as gw:
        async with gw.client() as c:
            frames = await c.chat(msg("please shout hi"))
            await c.chat(msg("again"))
            history = (await c.request("chat.history", {"session": "default:test:alice:main"}))["result"]
    assert events_of(frames) == ["text", "tool_use", "tool_use", "tool_result", "tool_result", "text", "usage", "done"]
    assert frames[1]["data"] == {"id": "t1", "name": "shout", "input": {"text": "hi"}}
    assert frames[3]["data"] == {"tool_use_id": "t1", "content": "HI", "is_error": False}
    assert frames[4]["data"] == {"tool_use_id": "t2", "content": "unknown tool: nope", "is_error": True}
    assert [t.name for t in provider.history[0].tools] == ["shout"]
    # the second call carries the tool exchange; the next turn replays it
    second = provider.history[1].messages
    assert [m.role for m in second] == ["user", "assistant", "tool"]
    replay = provider.history[2].messages
    assert [m.role for m in replay] == ["user", "assistant", "tool", "assistant", "user"]
    assert replay[2].tool_results[0].content == "HI"
    assert [h["role"] for h in history[:4]] == ["user", "assistant", "tool", "assistant"]
    assert history[1]["tool_calls"][0]["name"] == "shout"
    assert history[2]["tool_results"][1]["is_error"] is True


async def test_max_tool_iterations_is_enforced(tmp_path):
    provider = ScriptedProvider()
    for i in range(5):
        provider.enqueue(Script(tool_calls=[ToolCall(f"t{i}", "shout", {"text": "x"})]))
    agent = AgentConfig(id="default", provider="scripted", model="m1", max_tool_iterations=2)
    plugins = [("scripted", Scripted(provider)), ("shout", DispatchEcho())]
    async with running_gateway(make_settings(data_dir=tmp_path, agents=[agent]), plugins=plugins) as gw:
        async with gw.client() as c:
            frames = await c.chat(msg("loop"))
            sessions = (await c.request("session.list"))["result"]
        report = await gw.rt.store.usage_report("model")
    assert frames[-2]["event"] == "error" and "max_tool_iterations" in frames[-2]["data"]
    assert len(provider.history) == 3 and sessions == []
    # the turn failed and stored nothing, but its three calls were paid for: each is on record
    assert [(r["calls"], r["input_tokens"], r["output_tokens"]) for r in report] == [(3, 30, 15)]


class Broken:
    """A plugin that raises in every observer and contribution hook."""

    @hookimpl
    def assemble_context(self, request):
        raise RuntimeError("context boom")

    @hookimpl
    async def after_llm_call(self, call, result):
        raise RuntimeError("after boom")

    @hookimpl
    def after_turn(self, turn):
        raise RuntimeError("turn boom")

    @hookimpl
    def dispatch_tool(self, call, context):
        raise RuntimeError("dispatch boom")


async def test_observer_failures_are_isolated_and_logged(tmp_path, caplog):
    provider = ScriptedProvider()
    provider.enqueue(Script(tool_calls=[ToolCall("t1", "anything", {})]), Script(text=["fine"]))
    plugins = [("scripted", Scripted(provider)), ("broken", Broken())]
    async with running_gateway(scripted_settings(tmp_path), plugins=plugins) as gw:
        async with gw.client() as c:
            frames = await c.chat(msg("hi"))
    assert events_of(frames)[-3:] == ["text", "usage", "done"]
    assert frames[1]["data"]["is_error"] is True and "dispatch boom" in frames[1]["data"]["content"]
    logged = caplog.text
    for needle in ("plugin=broken hook=assemble_context", "plugin=broken hook=after_llm_call", "plugin=broken hook=after_turn"):
        assert needle in logged


class Refuser:
    @hookimpl
    def before_llm_call(self, call):
        raise ValueError("nope")


async def test_before_llm_call_exception_refuses_the_call(tmp_path):
    provider = ScriptedProvider()
    plugins = [("scripted", Scripted(provider)), ("refuser", Refuser())]
    async with running_gateway(scripted_settings(tmp_path), plugins=plugins) as gw:
        async with gw.client() as c:
            frames = await c.chat(msg("hi"))
    assert events_of(frames) == ["error", "done"] and "nope" in frames[0]["data"]
    assert provider.history == []


class LeakyProvider:
    """A provider plugin whose own error text quotes a credential."""

    def __init__(self, secret: str):
        self.secret = secret

    @hookimpl
    def register_providers(self, register):
        secret = self.secret

        class P:
            async def stream(self, request):
                raise RuntimeError(f"401 for url https://api.example/v1?key={secret}")
                yield  # pragma: no cover

        register("leaky", lambda settings: P())


async def test_a_credential_in_a_plugin_error_never_reaches_the_stream(tmp_path):
    secret = "sk-leaky-0123456789abcdef"
    agent = AgentConfig(id="default", provider="leaky", model="m", api_key=secret)
    async with running_gateway(make_settings(data_dir=tmp_path, agents=[agent]),
                               plugins=[("leaky", LeakyProvider(secret))]) as gw:
        async with gw.client() as c:
            frames = await c.chat(msg("hi"))
    assert events_of(frames) == ["error", "done"]
    assert frames[0]["data"].startswith("provider error: leaky failed: RuntimeError")
    assert secret not in frames[0]["data"] and "[REDACTED]" in frames[0]["data"]


async def test_free_form_provider_options_and_the_fallbacks_own_max_tokens(tmp_path):
    primary, backup = ScriptedProvider(), ScriptedProvider()
    primary.enqueue(Script(error=ProviderError("bad request", status=400)))
    backup.enqueue(Script(text=["ok"]))
    agent = AgentConfig(
        id="default", provider="scripted", model="m1", max_tokens=4096,
        options={"stop": ["x", "y"], "extra": {"a": 1}},  # lists and tables are allowed in options
        fallback=ProviderSettings("backup", "m2", max_tokens=256),
    )
    plugins = [("scripted", Scripted(primary)), ("backup", Scripted(backup, "backup"))]
    async with running_gateway(make_settings(data_dir=tmp_path, agents=[agent]), plugins=plugins) as gw:
        async with gw.client() as c:
            frames = await c.chat(msg("hi"))
    assert text_of(frames) == "ok"
    assert primary.history[0].max_tokens == 4096
    assert backup.history[0].model == "m2" and backup.history[0].max_tokens == 256
