"""The running gateway's state: settings, plugins, store, providers, lanes, metrics.

One ``Runtime`` per gateway; the aiohttp app holds it under an ``AppKey``.
Plugins see it only through :class:`GatewayHost` (the ``Host`` protocol of
``exoclaw_hooks``). Every face hands its messages to :meth:`Runtime.submit`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
import time
import uuid
from typing import Any, Awaitable, Callable, Coroutine

from exoclaw_hooks import (
    AgentConfig,
    IncomingMessage,
    LLMReply,
    LLMRequest,
    ProviderError,
    ProviderInfo,
    ProviderSettings,
    Route,
)

from . import __version__, hookcall
from .agent.events import NoAgent, Sink
from .agent.lanes import Lanes
from .agent.llm import RetryPolicy
from .agent.loop import TurnOutcome, run_turn
from .channels import Channels
from .config.types import Settings
from .logs import register_secret
from .metrics import Metrics
from .plugins import ExoclawPluginManager, collect_providers, configure_plugins

log = logging.getLogger("exoclaw.runtime")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class GatewayHost:
    """What plugins get as ``host`` (see ``exoclaw_hooks.Host``)."""

    def __init__(self, rt: "Runtime"):
        self._rt = rt
        self.store = rt.store
        self.app: Any = None
        self._http: Any = None
        self._hooks = hookcall.HookCallerFacade(rt.pm)

    @property
    def hooks(self) -> hookcall.HookCallerFacade:
        return self._hooks

    def now(self) -> dt.datetime:
        return self._rt.clock()

    def register_secret(self, value: str | None) -> None:
        register_secret(value)

    def http(self) -> Any:
        """The gateway's one shared aiohttp client session (connection reuse)."""
        if self._http is None or self._http.closed:
            import aiohttp

            self._http = aiohttp.ClientSession(
                # no pool cap: every concurrent stream to a provider gets its own
                # connection (a cap queued the 101st stream behind the others)
                connector=aiohttp.TCPConnector(limit=0, limit_per_host=0, enable_cleanup_closed=True),
                timeout=aiohttp.ClientTimeout(total=None, connect=10, sock_read=None),
                trust_env=False,
            )
        return self._http

    async def llm(
        self, request: LLMRequest, *, agent: AgentConfig, route: Route, kind: str = "plugin",
        provider: str | None = None, model: str | None = None,
    ) -> LLMReply:
        """A metered LLM call on a plugin's behalf (budgets checked, usage recorded with ``kind``)."""
        from .agent.calls import plugin_call

        return await plugin_call(self._rt, request, agent=agent, route=route, kind=kind, provider=provider, model=model)

    async def close(self) -> None:
        if self._http is not None and not self._http.closed:
            await self._http.close()


class Runtime:
    def __init__(
        self,
        settings: Settings,
        pm: ExoclawPluginManager,
        store: Any,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
    ):
        self.settings = settings
        self.pm = pm
        self.store = store
        self.clock = clock
        configure_plugins(pm, settings)  # each plugin gets its own tables (ConfigError if invalid)
        #: the agents as hooks see them: without their API keys
        self.agents: dict[str, AgentConfig] = {k: a.public() for k, a in settings.agents.items()}
        self.host = GatewayHost(self)
        self.metrics = Metrics()
        # a store shared between gateways keeps a session's turns FIFO across them too
        shared = getattr(store, "lanes", None)
        self.lanes = Lanes(shared() if callable(shared) else None)
        self.retry_policy = RetryPolicy()
        self.providers: dict[str, ProviderInfo] = {}
        self.methods: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = {}
        self.turns: set[asyncio.Task[Any]] = set()
        #: turns writing their result to the store: too late to cancel (see :meth:`cancel`)
        self.committing: set[asyncio.Task[Any]] = set()
        #: why a turn was cancelled, when :meth:`cancel` did it (else: the gateway is stopping)
        self.cancel_reasons: dict[asyncio.Task[Any], str] = {}
        #: work a turn leaves behind after its ``done`` (learning), outside the session's lane
        self.background: set[asyncio.Task[Any]] = set()
        self.connections = 0
        self.started_at = time.time()
        #: this process among the gateways sharing a store (its name on inbox claims)
        self.instance_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.ready = False
        self.stopping = False
        #: seconds a new /ws connection has to authenticate; turns' grace period at shutdown
        self.auth_timeout_s = 10.0
        self.shutdown_grace_s = 10.0
        self.channels: Channels | None = None
        #: the data directory's lock, when this runtime owns it (``exoclaw serve``)
        self.data_dir_lock: Any = None
        self._providers: dict[tuple[Any, ...], Any] = {}
        for agent in settings.agents.values():
            register_secret(agent.api_key)
            if agent.fallback:
                register_secret(agent.fallback.api_key)
        register_secret(settings.gateway.token)

    # ------------------------------------------------------------ lifecycle

    def register_plugins(self) -> None:
        """Run the registration hooks (providers, RPC methods)."""

        def add_method(name: str, handler: Callable[[dict[str, Any]], Awaitable[Any]]) -> None:
            self.methods[name] = handler

        self.providers = collect_providers(self.pm, self.host)
        hookcall.call_sync(self.pm, "register_methods", register=add_method, host=self.host)

    async def start(self, app: Any = None) -> None:
        self.register_plugins()
        self.host.app = app
        try:
            await hookcall.call_all(self.pm, "gateway_startup", host=self.host)
        finally:
            self.host.app = None
        missing = sorted({a.provider for a in self.settings.agents.values()} - set(self.providers))
        for name in missing:
            log.error("event=provider_missing provider=%s (no plugin registered it; turns of its agents will fail)", name)
        self.channels = Channels(self)
        if hasattr(self.store, "inbox_pending"):
            await self.channels.resume()
        self.ready = True

    async def stop(self, grace_s: float = 10.0) -> None:
        self.ready = False
        self.stopping = True  # turns accepted from now on end at once with an error
        if self.channels is not None:
            self.channels.stop()
        work = set(self.turns) | set(self.background) | set(self.channels.tasks if self.channels else ())
        if work:
            log.info("event=shutdown_wait tasks=%d grace_s=%.1f", len(work), grace_s)
            done, pending = await asyncio.wait(work, timeout=grace_s)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
                log.warning("event=shutdown_cancelled turns=%d", len(pending))
        await hookcall.call_all(self.pm, "gateway_shutdown", host=self.host)
        await self.host.close()

    async def settled(self) -> None:
        """Wait until the work turns left behind (learning) is done (tests, shutdown)."""
        while self.background:
            await asyncio.gather(*list(self.background), return_exceptions=True)

    def spawn_background(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return task

    # ------------------------------------------------------------ turns

    def provider_for(self, settings: ProviderSettings) -> Any:
        # options are free-form (lists, tables): their repr is the hashable part of the key
        key = (settings.provider, settings.model, settings.base_url, settings.api_key, settings.timeout_s,
               repr(sorted(settings.options.items())))
        provider = self._providers.get(key)
        if provider is None:
            info = self.providers.get(settings.provider)
            if info is None:
                raise ProviderError(f"no provider plugin named {settings.provider} is loaded")
            provider = self._providers[key] = info.factory(settings)
        return provider

    async def route(self, message: IncomingMessage) -> Route:
        try:
            route = await hookcall.call_first(
                self.pm, "resolve_route", message=message, agents=self.agents, default_agent=self.settings.default_agent,
            )
        except hookcall.HookError as exc:
            log.error("event=route_failed plugin=%s error=%s", exc.plugin, hookcall.one_line(exc.error))
            route = None
        if not isinstance(route, Route) or route.agent_id not in self.settings.agents:
            raise NoAgent(f"no agent configured for {message.channel}:{message.account}:{message.peer}")
        return route

    async def submit(
        self, message: IncomingMessage, sink: Sink, route: Route | None = None, *, replaces: int | None = None,
        inbox_id: int | None = None,
    ) -> asyncio.Task[TurnOutcome]:
        """Route ``message`` (unless ``route`` is given) and start its turn; the one way in for every face.

        The turn runs as the runtime's own task: a client that goes away does
        not cancel it (it completes and is stored). ``sink`` receives the
        turn's events, ending with exactly one ``DONE``.

        ``replaces``: the seq of the session's last turn, when this turn is
        a new answer to the same message (a chat UI's "regenerate"). If that
        turn is still the session's last when this one runs, the model does
        not see it and it is replaced when this turn is stored; otherwise
        this is an ordinary new turn.

        ``inbox_id``: the webhook inbox item the turn answers; its reply is
        kept in the inbox in the turn's own transaction.

        :raises NoAgent: no agent for this message (nothing ran).
        """
        if route is None:
            route = await self.route(message)
        task = asyncio.get_running_loop().create_task(run_turn(self, message, route, sink, replaces=replaces, inbox_id=inbox_id))
        self.turns.add(task)
        task.add_done_callback(self.turns.discard)
        return task

    def cancel(self, turn: asyncio.Task[Any], reason: str) -> bool:
        """Cancel a turn ``submit`` started, e.g. for a client's ``chat.cancel``.

        Its upstream call is closed, its stream ends with an error (``reason``)
        and ``DONE``, and nothing of it is stored. Returns False when it is too
        late: the turn has ended, or is committing (it then completes and is
        stored as usual).
        """
        if turn.done() or turn in self.committing or turn not in self.turns:
            return False
        self.cancel_reasons[turn] = reason
        turn.add_done_callback(lambda t: self.cancel_reasons.pop(t, None))
        turn.cancel()
        return True

    # ------------------------------------------------------------ status

    def plugin_report(self) -> list[dict[str, Any]]:
        return [r for rs in hookcall.call_sync(self.pm, "plugin_report", host=self.host) for r in rs]

    def loaded_wasm_plugins(self) -> list[dict[str, Any]]:
        # an entry with a "group" is something else a plugin manages (an MCP server), not a WASM plugin
        return [
            {k: p.get(k) for k in ("name", "kind", "tools", "capabilities")}
            for p in self.plugin_report()
            if p.get("loaded") and not p.get("group")
        ]

    def store_status(self) -> dict[str, Any]:
        """Which store is in use: its kind and where (a URL never with its password)."""
        from exoclaw_hooks import safe_url

        describe = getattr(self.store, "describe", None)
        info = dict(describe()) if callable(describe) else {"kind": type(self.store).__name__}
        if "url" in info:
            info["url"] = safe_url(str(info["url"])) if "://" in str(info["url"]) else str(info["url"])
        return info

    async def status(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "version": __version__,
            "plugins": len(self.loaded_wasm_plugins()),
            "sessions": await self.store.count_sessions(),
            "agents": [
                {"id": a.id, "provider": a.provider, "model": a.model, "default": a.id == self.settings.default_agent}
                for a in self.settings.agents.values()
            ],
            "uptime_s": round(time.time() - self.started_at, 3),
            "connections": self.connections,
            "turns_in_flight": len(self.turns),
            "hook_plugins": [
                {"name": r.name, "source": r.source, "status": r.status} for r in self.pm.records
            ],
            "wasm_plugins": self.loaded_wasm_plugins(),
            "store": self.store_status(),
        }
        if hasattr(self.store, "inbox_counts"):
            result["deliveries"] = await self.store.inbox_counts()
        for extra in await hookcall.call_all(self.pm, "status_info", host=self.host):
            if isinstance(extra, dict):
                result.update(extra)
        return result
