"""Every hook of Exoclaw, with the reference documentation for plugin authors.

The core calls hooks the pluggy way (``pm.hook.NAME(...)``): ``tryfirst`` /
``trylast``, ``firstresult`` and wrappers (``wrapper=True``,
``hookwrapper=True``) work as pluggy documents them. There are four kinds of
hooks; each docstring says which one it is.

* **Decision** (``firstresult``: the first non-``None`` result wins):
  ``resolve_route``, ``dispatch_tool``, ``parse_incoming``,
  ``format_outgoing``, ``extract_facts``, ``context_policy``. Write a plain ``def`` that returns
  ``None`` to pass, or its answer — an awaitable when the answer needs I/O.
  An ``async def`` decision is refused at load: its coroutine is never
  ``None``, so it would win even when it meant to pass. An exception becomes
  that request's error (an error tool result, a refused webhook …).
* **Contribution / observer** (every implementation runs; plain or
  ``async def``): ``assemble_context``, ``after_llm_call``, ``after_turn``,
  ``list_tools``, ``status_info``, ``plugin_report``, ``gateway_startup``,
  ``gateway_shutdown``. One that raises is logged with the plugin's name and
  the others still run.
* **Pipeline**: ``before_llm_call``. Implementations run one after another
  in pluggy's order, each seeing the request as the previous one left it;
  an exception refuses the call. Wrappers of this hook are refused at load.
* **Registration** (once at start-up, plain functions, with a ``register``
  callback): ``register_settings``, ``register_providers``,
  ``register_methods``.

Only ever add arguments to these specs: pluggy lets an implementation take
any subset of them, so a new argument breaks nobody.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping

import pluggy

if TYPE_CHECKING:
    from ._config import AgentConfig
    from ._host import Host
    from ._settings import SettingsTable
    from ._types import (
        CompletedTurn,
        ContextPart,
        ContextPolicy,
        ContextRequest,
        Fact,
        Ignore,
        IncomingMessage,
        LLMCall,
        LLMCallResult,
        LLMRequest,
        OutgoingReply,
        OutgoingRequest,
        Route,
        ToolCall,
        ToolContext,
        ToolResult,
        ToolSpec,
        WebhookRequest,
    )

PROJECT = "exoclaw"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

#: the decision hooks (first result wins; implementations must be plain functions)
DECISION_HOOKS = frozenset(
    {"resolve_route", "dispatch_tool", "parse_incoming", "format_outgoing", "extract_facts", "context_policy"}
)
#: hooks whose implementations are awaited in turn, each seeing the previous one's result
PIPELINE_HOOKS = frozenset({"before_llm_call"})
#: hooks called once at start-up with a ``register`` callback
REGISTRATION_HOOKS = frozenset({"register_settings", "register_providers", "register_methods", "register_stores"})

#: ``register(name, factory, *, default_model=None, key_env=None, auto=None)``
RegisterProvider = Callable[..., None]
#: ``register(scheme, factory)``; ``factory(url, *, data_dir) -> Store``
RegisterStore = Callable[..., None]
#: ``register(name, handler)``; ``async handler(params) -> JSON-able``
RegisterMethod = Callable[[str, Callable[[dict[str, Any]], Awaitable[Any]]], None]


# ---------------------------------------------------------------- registration


@hookspec
def register_settings(register: Callable[["SettingsTable"], None]) -> None:
    """Declare the TOML tables this plugin owns.  *Registration hook, called once at start-up.*

    :param register: ``register(SettingsTable(name, spec, apply, build=None))``
        for each table. The core validates the table (same located messages
        as its own, unknown keys are errors), builds it, and calls ``apply``
        with the result before the gateway starts — the plugin sees only its
        own tables. ``exoclaw config check`` validates them too.
    """


@hookspec
def register_providers(register: RegisterProvider, host: "Host | None") -> None:
    """Register LLM providers.  *Registration hook, called once at start-up.*

    :param register: ``register(name, factory, *, default_model=None,
        key_env=None, auto=None)``; ``factory(settings)`` gets a
        :class:`ProviderSettings` and returns a :class:`Provider` (an object
        with an async-generator method ``stream(request)``). ``name`` is what
        ``[agent] provider`` names; ``default_model``, ``key_env`` (the API
        key's environment variable) and ``auto`` (zero-config preference,
        lower first) are described in :class:`ProviderInfo`.
    :param host: the :class:`Host` (``None`` when only the names are wanted,
        e.g. by ``exoclaw config check``); ``host.http()`` is the shared
        aiohttp client session to use inside ``stream``.
    """


@hookspec
def register_methods(register: RegisterMethod, host: "Host") -> None:
    """Add WebSocket RPC methods.  *Registration hook, called once at start-up.*

    :param register: ``register(name, handler)``; ``async handler(params)``
        gets the request's ``params`` dict and returns the JSON-able result.
        Raise :class:`InvalidParams` for bad parameters.
    :param host: the :class:`Host`.
    """


@hookspec
def register_stores(register: RegisterStore) -> None:
    """Offer a kind of store, chosen by the scheme of ``[store] url``.  *Registration hook, called once at start-up.*

    :param register: ``register(scheme, factory)``, e.g. ``register("postgresql",
        open_postgres)``. When ``[store] url`` (or ``$EXOCLAW_STORE_URL``) has
        that scheme, the core calls ``factory(url, data_dir=...)`` once,
        before the event loop runs (blocking is fine), and uses what it
        returns as the gateway's :class:`Store`. The factory connects, applies
        its migrations (safely when several gateways start at once) and
        raises :class:`StoreUnavailable` (its message naming the URL without
        its password) when the database cannot be reached: the gateway then
        refuses to start, it never falls back. An empty url is the core's own
        SQLite store in the data directory. The store may offer
        ``lanes()``: an object like the core's session lanes
        (``hold(session_key)``, an async context manager) that keeps a
        session's turns FIFO across every gateway on the same database.
    """


# ---------------------------------------------------------------- decisions


@hookspec(firstresult=True)
def resolve_route(
    message: "IncomingMessage", agents: "Mapping[str, AgentConfig]", default_agent: str
) -> "Route | None":
    """Pick the agent and session for an incoming message.  *Decision hook.*

    :param message: the :class:`IncomingMessage`.
    :param agents: the configured agents by id.
    :param default_agent: the id of the default agent.
    :returns: a :class:`Route`, or ``None`` to let another plugin decide. When
        every plugin passes the message gets ``no agent configured for …``.
    """


@hookspec(firstresult=True)
def dispatch_tool(call: "ToolCall", context: "ToolContext") -> "ToolResult | Awaitable[ToolResult] | None":
    """Run a tool the model asked for.  *Decision hook.*

    :param call: the :class:`ToolCall` (``name``, ``input``, ``id``).
    :param context: a :class:`ToolContext` (agent, route, who is asking).
    :returns: ``None`` if the tool is not yours; else a :class:`ToolResult`
        or an awaitable of one. Raising :class:`ToolError` (or anything) gives
        the model an error result; the turn goes on.
    """


@hookspec(firstresult=True)
def parse_incoming(
    request: "WebhookRequest",
) -> "IncomingMessage | Ignore | Awaitable[IncomingMessage | Ignore] | None":
    """Turn a webhook request into a message.  *Decision hook.*

    :param request: a :class:`WebhookRequest` (``channel``, ``headers``, raw ``body``).
    :returns: ``None`` if ``request.channel`` is not yours (404 when nobody
        claims it); else an :class:`IncomingMessage` (set ``message_id`` so
        platform retries are dropped), or :class:`Ignore` for a payload with
        nothing to answer, or an awaitable of either. Raise
        :class:`ChannelError` (401 failed authenticity check, 400 bad payload).
    """


@hookspec(firstresult=True)
def format_outgoing(reply: "OutgoingReply") -> "OutgoingRequest | Awaitable[OutgoingRequest] | None":
    """Write the platform request that delivers a reply.  *Decision hook.*

    :param reply: an :class:`OutgoingReply` (``channel``, ``reply_to``, ``content``).
    :returns: ``None`` if not your channel; else an :class:`OutgoingRequest`
        (or an awaitable of one). Secrets stay placeholders (``{{secret:NAME}}``);
        the core fills them and checks the host against ``allowed_hosts``.
    """


@hookspec(firstresult=True)
def extract_facts(
    text: str, message: "IncomingMessage", known: "list[Fact]"
) -> "list[Fact] | Awaitable[list[Fact]] | None":
    """Extract facts from what a person said.  *Decision hook.*

    The builtin ``memory-semantic`` plugin ships an offline extractor
    registered ``trylast``; register your own to replace it.

    :param text: the user's message.
    :param message: the :class:`IncomingMessage` it came in.
    :param known: the person's current facts.
    :returns: a list of :class:`Fact` (``learned_at`` may be empty), an
        awaitable of one, or ``None`` to pass.
    """


@hookspec(firstresult=True)
def context_policy(agent: "AgentConfig") -> "ContextPolicy | None":
    """Say how big the agent's context may be and how it is shared.  *Decision hook.*

    The builtin memory plugins answer from ``[memory] context_tokens`` and
    ``shares``; with no answer the context is not trimmed.

    :param agent: the :class:`AgentConfig`.
    :returns: a :class:`ContextPolicy`, or ``None`` to pass.
    """


# ---------------------------------------------------------------- the pipeline


@hookspec
def before_llm_call(call: "LLMCall") -> "LLMRequest | Awaitable[LLMRequest | None] | None":
    """Check or adjust an LLM call before it is made.  *Pipeline hook, may be async.*

    Called before every call: the agent's, each round of its tool loop, and
    the calls plugins make through ``host.llm`` (``call.kind`` says which).
    Implementations run one after another; each sees ``call.request`` as the
    previous one left it.

    :param call: an :class:`LLMCall`.
    :returns: ``None``, or a replacement :class:`LLMRequest` (e.g. a smaller
        ``max_tokens``, with ``output_limit`` set: the core cuts a stream
        that goes past that many counted tokens, so a budget that reserved
        the output can count on it whatever the upstream does).
    :raises BudgetExceeded: to refuse the call (no provider request is made).
    """


# ---------------------------------------------------------------- contributions and observers


@hookspec
def assemble_context(request: "ContextRequest") -> "list[ContextPart] | Awaitable[list[ContextPart] | None] | None":
    """Contribute parts of a turn's context.  *Contribution hook, may be async.*

    :param request: a :class:`ContextRequest` (agent, route, message, person, store).
    :returns: a list of :class:`ContextPart` (or ``None``). The core packs
        every part into the agent's context budget by section and rank.
    """


@hookspec
def after_llm_call(call: "LLMCall", result: "LLMCallResult") -> "dict[str, Any] | Awaitable[dict[str, Any] | None] | None":
    """Observe an LLM call's outcome.  *Observer, may be async; also called for failed and cancelled calls.*

    :param call: the :class:`LLMCall` given to ``before_llm_call`` (with the
        request as the pipeline left it; ``provider``/``model`` say who
        actually answered when the fallback did).
    :param result: an :class:`LLMCallResult` (usage, duration, error).
    :returns: ``None``, or a dict ``{"cost_usd": float, "priced": bool}``
        that the core adds into the turn's ``usage`` event, optionally with
        ``"budget_warnings": [{"scope", "unit", "used", "limit", "share",
        "period_start"}, ...]``: each becomes a ``budget.warning`` event of the
        turn and counts in ``exoclaw_budget_warnings_total{scope}``.
    """


@hookspec
def after_turn(turn: "CompletedTurn") -> "Awaitable[None] | None":
    """Learn from a committed turn.  *Observer, may be async.*

    Runs after the turn's ``done`` and outside the session's lane: the next
    turn of the session does not wait for it.

    :param turn: a :class:`CompletedTurn`.
    """


@hookspec
def list_tools(agent: "AgentConfig") -> "list[ToolSpec] | None":
    """Offer tools to an agent's model.  *Contribution hook.*

    :param agent: the :class:`AgentConfig` (respect ``agent.tools`` when set).
    :returns: a list of :class:`ToolSpec`.
    """


@hookspec
def status_info(host: "Host") -> "dict[str, Any] | Awaitable[dict[str, Any] | None] | None":
    """Add fields to the ``status`` RPC.  *Contribution hook, may be async.*

    :returns: a dict merged into the status result, or ``None``.
    """


@hookspec
def plugin_report(host: "Host") -> "list[dict[str, Any]] | None":
    """Describe the sandboxed plugins or remote tool servers you manage.  *Contribution hook.*

    :returns: a list of dicts ``{"name", "kind", "tools", "capabilities",
        "loaded": bool, "reason", "path", "not_granted"}``. An entry that is
        not a WASM plugin (an MCP server …) sets ``"group"`` (a heading, e.g.
        ``"mcp servers"``) and may set ``"summary"`` (its one-line state for
        ``serve`` and ``exoclaw plugins``) and ``"warning"`` (printed loudly at
        start-up); ``status`` counts only the entries without a group as
        plugins.
    """


@hookspec
def gateway_startup(host: "Host") -> "Awaitable[None] | None":
    """The gateway is starting.  *Observer, may be async.*

    ``host.app`` is the aiohttp application: add routes here. Slow start-up
    work (compiling modules) belongs here; the port opens after every
    implementation returned.
    """


@hookspec
def gateway_shutdown(host: "Host") -> "Awaitable[None] | None":
    """The gateway is stopping.  *Observer, may be async.* Release what you hold."""
