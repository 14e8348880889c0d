"""The builtin ``wasm`` plugin: WASM tools and channel adapters run with Extism (SPEC §6, §7).

It is a hook plugin like any third party's (entry point ``wasm``); the core
instantiates :class:`WasmPlugin` once per gateway.

* ``gateway_startup``: every ``[[plugins]]`` entry is loaded in a worker
  thread (:func:`bridge.load_plugin`); a missing file is one WARNING line,
  any other failure one ERROR line ``event=wasm_plugin_rejected`` and the
  gateway starts without that plugin. A tool name already owned by an
  earlier plugin is refused (logged) for the later one.
* ``list_tools`` / ``dispatch_tool``: the tools of loaded tool plugins,
  filtered by the agent's ``tools`` allowlist; a tool not ours, or not
  allowed for the asking agent, is passed on (``None``) so the core answers
  ``unknown tool: NAME``.
* ``parse_incoming`` / ``format_outgoing``: for loaded channel plugins.
* ``plugin_report``: every configured plugin, loaded or not, with the reason.

Calls run on a thread pool owned by this object, never on the event loop,
each admitted first by its plugin's slots (:mod:`.limits`: per plugin and
per session), so one session's hostile tool cannot hold another's; the
workers run at a lower CPU priority than the gateway (Linux ``nice``), so
endless loops do not slow the event loop either. A tool
call gets the caller's identity (``caller``: agent, channel, account,
peer, person; never a secret). A cancelled turn stops its calls, a stopping
gateway all of them: a call waiting for its slot never starts, an HTTP
request in flight is cut at once and the guest stopped at its next host
call; a pure computation ends at its ``timeout_ms`` (see :mod:`.callctx`
for why it is not cancelled earlier).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from exoclaw_hooks import SettingsTable, ToolCall, ToolResult, ToolSpec, hookimpl, log_value

from . import bridge, calls, channels
from .callctx import CallContext, CallFailure
from .capabilities import not_granted
from .extlog import EXTISM_LOG
from .settings import PLUGINS, WasmPluginConfig, build_plugins
from .limits import PluginSlots

log = logging.getLogger("exoclaw.wasm")


#: how much lower the WASM workers' CPU priority is than the gateway's (Linux ``nice``)
WORKER_NICENESS = 10


def _lower_priority() -> None:
    """Run this worker thread at a lower CPU priority: the event loop always wins over sandboxed code.

    On Linux a thread has its own nice value; elsewhere (or if refused) nothing changes.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICENESS)
    except (AttributeError, OSError):
        pass


class WasmPlugin:
    """Loads the configured WASM plugins and answers the tool and channel hooks for them."""

    def __init__(self, workers: int | None = None) -> None:
        #: worker threads; ``None``: as many as all loaded plugins' ``max_concurrency`` together
        self.workers = workers
        self._executor: ThreadPoolExecutor | None = None
        self._loaded: dict[str, bridge.LoadedPlugin] = {}
        self._tools: dict[str, tuple[bridge.LoadedPlugin, ToolSpec]] = {}
        self._channels: dict[str, bridge.LoadedPlugin] = {}
        self._report: list[dict[str, Any]] = []
        self.configs: tuple[WasmPluginConfig, ...] = ()
        self._slots: dict[str, PluginSlots] = {}
        #: the calls running now (a stopping gateway stops them)
        self._running: set[CallContext] = set()

    # ------------------------------------------------------------ lifecycle

    @hookimpl
    def register_settings(self, register: Any) -> None:
        register(SettingsTable(
            "plugins", PLUGINS, apply=self.configure, build=build_plugins,
            doc="WASM plugins: tools and channel adapters, each with only the rights granted here.",
        ))

    def configure(self, configs: tuple[WasmPluginConfig, ...]) -> None:
        self.configs = configs

    @hookimpl
    async def gateway_startup(self, host: Any) -> None:
        configs = self.configs
        for cfg in configs:  # channel secrets are read from these variables: never log their values
            for var in cfg.secrets.values():
                host.register_secret(os.environ.get(var))
        self._loaded, self._tools, self._channels, self._report, self._slots = {}, {}, {}, [], {}
        if configs:
            EXTISM_LOG.enable()
            store = getattr(host, "store", None)
            outcomes = await asyncio.gather(*(asyncio.to_thread(self._load_one, cfg, store) for cfg in configs))
            for cfg, outcome in zip(configs, outcomes):
                self._register(cfg, outcome)
        self._slots = {
            name: PluginSlots(lp.config.max_concurrency, lp.config.max_concurrency_per_session)
            for name, lp in self._loaded.items()
        }
        if self._executor is None:
            workers = self.workers or max(1, sum(lp.config.max_concurrency for lp in self._loaded.values()))
            self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="exoclaw-wasm",
                                                initializer=_lower_priority)

    @hookimpl
    async def gateway_shutdown(self, host: Any) -> None:
        executor, self._executor = self._executor, None
        self._tools, self._channels, self._loaded = {}, {}, {}
        for ctx in list(self._running):  # no call runs on to its timeout_ms
            ctx.stop(CallFailure("cancelled", "the gateway is stopping"))
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)

    @staticmethod
    def _load_one(cfg: WasmPluginConfig, store: Any) -> bridge.LoadedPlugin | BaseException:
        try:
            return bridge.load_plugin(cfg, store)
        except bridge.LoadError as exc:
            return exc
        except Exception as exc:  # noqa: BLE001 - one broken plugin must not stop the gateway
            return bridge.LoadError(f"unexpected error while loading: {bridge.one_line(f'{type(exc).__name__}: {exc}')}")

    def _register(self, cfg: WasmPluginConfig, outcome: bridge.LoadedPlugin | BaseException) -> None:
        entry: dict[str, Any] = {
            "name": cfg.name, "kind": None, "tools": [], "capabilities": list(cfg.capabilities),
            "loaded": False, "reason": "", "path": cfg.path, "not_granted": [],
        }
        self._report.append(entry)
        if isinstance(outcome, bridge.PluginMissing):
            entry["reason"] = str(outcome)
            log.warning("event=wasm_plugin_missing plugin=%s path=%s reason=%s",
                        log_value(cfg.name), log_value(cfg.path), log_value(outcome))
            return
        if isinstance(outcome, BaseException):
            entry["reason"] = str(outcome)
            log.error("event=wasm_plugin_rejected plugin=%s reason=%s path=%s",
                      log_value(cfg.name), log_value(outcome), log_value(cfg.path))
            return
        if cfg.name in self._loaded:
            entry["reason"] = "another [[plugins]] entry has the same name"
            log.error("event=wasm_plugin_rejected plugin=%s reason=%s", log_value(cfg.name), log_value(entry["reason"]))
            return
        lp = outcome
        accepted: list[str] = []
        if lp.kind == "tool":
            for spec in lp.tools:
                owner = self._tools.get(spec.name)
                if owner is not None:
                    log.error("event=wasm_tool_refused plugin=%s tool=%s reason=%s", log_value(cfg.name),
                              log_value(spec.name), log_value(f"plugin {owner[0].name} already provides tool {spec.name}"))
                    continue
                self._tools[spec.name] = (lp, spec)
                accepted.append(spec.name)
        else:
            self._channels[cfg.name] = lp
        self._loaded[cfg.name] = lp
        for warning in lp.warnings:
            log.warning("event=wasm_plugin_warning plugin=%s warning=%s", log_value(cfg.name), log_value(warning))
        entry.update(
            kind=lp.kind, tools=accepted, capabilities=list(lp.grants.granted), loaded=True,
            not_granted=not_granted(lp.asked, lp.grants.granted), compile_ms=round(lp.compile_ms, 2),
        )
        if entry["not_granted"]:
            log.info("event=wasm_plugin_not_granted plugin=%s asked=%s", log_value(cfg.name),
                     log_value(",".join(entry["not_granted"])))
        log.info("event=wasm_plugin_loaded plugin=%s kind=%s tools=%s capabilities=%s compile_ms=%.1f",
                 log_value(cfg.name), lp.kind, log_value(",".join(accepted)),
                 log_value(",".join(lp.grants.granted)), lp.compile_ms)

    # ------------------------------------------------------------ reports

    @hookimpl
    def plugin_report(self, host: Any) -> list[dict[str, Any]]:
        return [dict(e, tools=list(e["tools"]), capabilities=list(e["capabilities"]),
                     not_granted=list(e["not_granted"])) for e in self._report]

    # ------------------------------------------------------------ tools

    @hookimpl
    def list_tools(self, agent: Any) -> list[ToolSpec]:
        allowed = getattr(agent, "tools", None)
        return [spec for name, (_, spec) in self._tools.items() if allowed is None or name in allowed]

    @hookimpl
    def dispatch_tool(self, call: ToolCall, context: Any) -> Any:
        entry = self._tools.get(call.name)
        if entry is None:
            return None
        agent = getattr(context, "agent", None)
        allowed = getattr(agent, "tools", None)
        if allowed is not None and call.name not in allowed:
            return None  # the core answers "unknown tool: NAME"
        return self._run_tool(entry[0], call, context)

    async def _run_tool(self, lp: bridge.LoadedPlugin, call: ToolCall, context: Any) -> ToolResult:
        route = getattr(context, "route", None)
        ctx = calls.new_context(lp)
        try:
            return await self._call(lp, getattr(route, "session_key", None), ctx,
                                    calls.run_tool, lp, call, calls.caller_of(route), ctx)
        except RuntimeError as exc:  # not running, or the executor shut down under us
            return ToolResult(call.id, f"tool {call.name} failed: {exc}", True)

    async def _call(self, lp: bridge.LoadedPlugin, session: str | None, ctx: CallContext,
                    fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` in a worker once the plugin (and the session) has a free slot."""
        slots = self._slots.get(lp.name)
        if slots is None or self._executor is None:
            raise RuntimeError("the wasm plugins are not running")
        slot = await slots.acquire(session)
        executor = self._executor
        if executor is None:  # the gateway stopped while this call waited for its slot
            slot.release()
            raise RuntimeError("the gateway is stopping")
        self._running.add(ctx)

        def done(_: Any) -> None:  # the thread is done: its slot is free again
            slot.release()
            self._running.discard(ctx)

        try:
            context = contextvars.copy_context()  # log lines in the worker keep the turn's request id
            future = asyncio.get_running_loop().run_in_executor(
                executor, functools.partial(context.run, fn, *args, **kwargs))
        except BaseException:
            done(None)
            raise
        future.add_done_callback(done)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            ctx.stop(CallFailure("cancelled", "the turn was cancelled"))
            raise

    # ------------------------------------------------------------ channels

    @hookimpl
    def parse_incoming(self, request: Any) -> Any:
        lp = self._channels.get(getattr(request, "channel", None))
        if lp is None:
            return None
        channels.verify(lp, request.headers)  # 401 before the WASM sees anything
        ctx = calls.new_context(lp)
        return self._call(lp, None, ctx, channels.parse_incoming, lp, request, verified=True, ctx=ctx)

    @hookimpl
    def format_outgoing(self, reply: Any) -> Any:
        lp = self._channels.get(getattr(reply, "channel", None))
        if lp is None:
            return None
        ctx = calls.new_context(lp)
        return self._call(lp, None, ctx, channels.format_outgoing, lp, reply, ctx=ctx)
