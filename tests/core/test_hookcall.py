"""Hooks are called the pluggy way: wrappers, tryfirst/trylast, firstresult, isolation, async."""

from __future__ import annotations

import logging

import pytest

from exoclaw_core import hookcall
from exoclaw_core.config import Settings
from exoclaw_core.plugins import make_plugin_manager
from exoclaw_hooks import IncomingMessage, LLMRequest, Route, hookimpl


def pm_with(*plugins):
    return make_plugin_manager(Settings(), load_entrypoints=False, plugins=[(f"p{i}", p) for i, p in enumerate(plugins)])


MESSAGE = IncomingMessage("t", "a", "hi")


class Router:
    def __init__(self, agent):
        self.agent = agent

    @hookimpl
    def resolve_route(self, message, agents, default_agent):
        return Route(self.agent, f"{self.agent}:t:a:main")


class RouteWrapper:
    """A new-style wrapper around a decision: it sees the decision and may replace it."""

    seen = None

    @hookimpl(wrapper=True)
    def resolve_route(self, message, agents, default_agent):
        route = yield
        RouteWrapper.seen = route
        return Route("wrapped", route.session_key)


class OldStyleWrapper:
    @hookimpl(hookwrapper=True)
    def status_info(self, host):
        outcome = yield
        outcome.force_result(outcome.get_result() + [{"wrapped": True}])


class Status:
    def __init__(self, value, **opts):
        self.value = value

    @hookimpl
    def status_info(self, host):
        return {"v": self.value}


class AsyncStatus:
    @hookimpl
    async def status_info(self, host):
        return {"async": True}


class First:
    @hookimpl(tryfirst=True)
    def status_info(self, host):
        return {"v": "first"}


class Last:
    @hookimpl(trylast=True)
    def status_info(self, host):
        return {"v": "last"}


async def test_a_wrapper_around_a_decision_works_as_pluggy_documents_it():
    pm = pm_with(Router("a"), RouteWrapper())
    route = await hookcall.call_first(pm, "resolve_route", message=MESSAGE, agents={}, default_agent="a")
    assert RouteWrapper.seen == Route("a", "a:t:a:main")  # the wrapper saw the real decision, not a generator
    assert route == Route("wrapped", "a:t:a:main")


async def test_an_old_style_hookwrapper_sees_and_changes_the_results():
    pm = pm_with(Status(1), OldStyleWrapper())
    assert await hookcall.call_all(pm, "status_info", host=None) == [{"v": 1}, {"wrapped": True}]


async def test_tryfirst_and_trylast_order_the_results():
    pm = pm_with(Last(), Status("middle"), First())
    assert await hookcall.call_all(pm, "status_info", host=None) == [{"v": "first"}, {"v": "middle"}, {"v": "last"}]


async def test_firstresult_stops_at_the_first_answer():
    calls = []

    class Pass:
        @hookimpl
        def resolve_route(self, message, agents, default_agent):
            calls.append("pass")

    class Never:
        @hookimpl(trylast=True)
        def resolve_route(self, message, agents, default_agent):
            calls.append("never")
            return Route("never", "x")

    pm = pm_with(Never(), Router("a"), Pass())
    assert (await hookcall.call_first(pm, "resolve_route", message=MESSAGE, agents={}, default_agent="a")).agent_id == "a"
    assert calls == ["pass"]


async def test_async_observers_are_awaited_and_a_failing_one_is_isolated_with_its_name(caplog):
    class Boom:
        @hookimpl
        async def status_info(self, host):
            raise RuntimeError("kaput")

    pm = pm_with(Status(1), AsyncStatus(), Boom())
    with caplog.at_level(logging.ERROR):
        # pluggy's order: the last registered first
        assert await hookcall.call_all(pm, "status_info", host=None) == [{"async": True}, {"v": 1}]
    assert "plugin=p2 hook=status_info" in caplog.text and "kaput" in caplog.text


async def test_a_decision_that_raises_is_a_hook_error_naming_the_plugin():
    class Broken:
        @hookimpl
        def dispatch_tool(self, call, context):
            async def later():
                raise ValueError("no such thing")
            return later()

    pm = pm_with(Broken())
    with pytest.raises(hookcall.HookError) as info:
        await hookcall.call_first(pm, "dispatch_tool", call=None, context=None)
    assert info.value.plugin == "p0" and isinstance(info.value.error, ValueError)


async def test_the_pipeline_threads_the_request_and_refuses_wrappers():
    seen = []

    class Shrink:
        @hookimpl(tryfirst=True)
        def before_llm_call(self, call):
            seen.append(call.max_tokens)
            return LLMRequest(call.model, call.system, call.messages, max_tokens=10)

    class Check:
        @hookimpl
        async def before_llm_call(self, call):
            seen.append(call.max_tokens)

    class Wrap:
        @hookimpl(wrapper=True)
        def before_llm_call(self, call):
            return (yield)

    pm = pm_with(Check(), Shrink(), Wrap())
    assert [r.status for r in pm.records] == ["loaded", "loaded", "failed"]
    assert "pipeline" in pm.records[2].reason
    result = await hookcall.call_pipeline(
        pm, "before_llm_call", "call", LLMRequest("m", "", ()), lambda cur, new: new,
    )
    assert seen == [4096, 10] and result.max_tokens == 10


def test_registration_hooks_are_isolated():
    class Bad:
        @hookimpl
        def register_methods(self, register, host):
            raise RuntimeError("nope")

    class Good:
        @hookimpl
        def register_methods(self, register, host):
            register("good", None)

    found = {}
    pm = pm_with(Good(), Bad())
    hookcall.call_sync(pm, "register_methods", register=found.__setitem__, host=None)
    assert list(found) == ["good"]
