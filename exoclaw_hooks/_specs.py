"""Every hook of Exoclaw, with the reference documentation for plugin authors.

There are three kinds of hooks; each docstring says which one it is.

* **Decision** (first non-``None`` result wins): ``resolve_route``,
  ``dispatch_tool``, ``parse_incoming``, ``format_outgoing``,
  ``extract_facts``. Write a plain ``def`` that returns ``None`` to pass, or
  its answer — an awaitable when the answer needs I/O. An ``async def``
  decision hook is refused at load: its coroutine is never ``None``, so it
  would win even when it meant to pass.
* **Contribution / observer** (every implementation runs; plain or
  ``async def``): ``assemble_context``, ``before_llm_call``,
  ``after_llm_call``, ``after_turn``, ``list_tools``, ``status_info``,
  ``plugin_report``, ``gateway_startup``, ``gateway_shutdown``. An observer
  that raises is logged with the plugin's name and the turn goes on, except
  ``before_llm_call``, whose exceptions refuse the call.
* **Registration** (once at start-up, with a ``register`` callback):
  ``register_providers``, ``register_methods``.

Only ever add arguments to these specs: pluggy lets an implementation take
any subset of them, so a new argument breaks nobody.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import pluggy

PROJECT = "exoclaw"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

#: names of the decision hooks (first result wins; implementations must be plain functions)
DECISION_HOOKS = frozenset(
    {"resolve_route", "dispatch_tool", "parse_incoming", "format_outgoing", "extract_facts"}
)


# ---------------------------------------------------------------- registration


@hookspec
def register_providers(register: Callable[[str, Callable[..., Any]], None], host: Any) -> None:
    """Register LLM providers.  *Registration hook, called once at start-up.*

    :param register: ``register(name, factory)``; ``factory(settings)`` gets a
        :class:`ProviderSettings` and returns a :class:`Provider` (an object
        with an async-generator method ``stream(request)``). ``name`` is what
        ``[agent] provider`` names.
    :param host: the :class:`Host`; ``host.http()`` is the shared aiohttp
        client session to use inside ``stream``.
    """


@hookspec
def register_methods(register: Callable[[str, Callable[..., Awaitable[Any]]], None], host: Any) -> None:
    """Add WebSocket RPC methods.  *Registration hook, called once at start-up.*

    :param register: ``register(name, handler)``; ``async handler(params)``
        gets the request's ``params`` dict and returns the JSON-able result.
        Raise :class:`InvalidParams` for bad parameters.
    :param host: the :class:`Host`.
    """


# ---------------------------------------------------------------- decisions


@hookspec(firstresult=True)
def resolve_route(message: Any, settings: Any) -> Any:
    """Pick the agent and session for an incoming message.  *Decision hook.*

    :param message: the :class:`IncomingMessage`.
    :param settings: the validated :class:`Settings` (agents, bindings).
    :returns: a :class:`Route`, or ``None`` to let another plugin decide. When
        every plugin passes the message gets ``no agent configured for …``.
    """


@hookspec(firstresult=True)
def dispatch_tool(call: Any, context: Any) -> Any:
    """Run a tool the model asked for.  *Decision hook.*

    :param call: the :class:`ToolCall` (``name``, ``input``, ``id``).
    :param context: a :class:`ToolContext` (agent, route).
    :returns: ``None`` if the tool is not yours; else a :class:`ToolResult`
        or an awaitable of one. Raising :class:`ToolError` (or anything) gives
        the model an error result; the turn goes on.
    """


@hookspec(firstresult=True)
def parse_incoming(request: Any) -> Any:
    """Turn a webhook request into a message.  *Decision hook.*

    :param request: a :class:`WebhookRequest` (``channel``, ``headers``, raw ``body``).
    :returns: ``None`` if ``request.channel`` is not yours (404 when nobody
        claims it); else an :class:`IncomingMessage` (set ``message_id`` so
        platform retries are dropped), or :class:`Ignore` for a payload with
        nothing to answer, or an awaitable of either. Raise
        :class:`ChannelError` (401 failed authenticity check, 400 bad payload).
    """


@hookspec(firstresult=True)
def format_outgoing(reply: Any) -> Any:
    """Write the platform request that delivers a reply.  *Decision hook.*

    :param reply: an :class:`OutgoingReply` (``channel``, ``reply_to``, ``content``).
    :returns: ``None`` if not your channel; else an :class:`OutgoingRequest`
        (or an awaitable of one). Secrets stay placeholders (``{{secret:NAME}}``);
        the core fills them and checks the host against ``allowed_hosts``.
    """


@hookspec(firstresult=True)
def extract_facts(text: str, message: Any, known: Any) -> Any:
    """Extract facts from what a person said.  *Decision hook.*

    The builtin ``memory-semantic`` plugin ships an offline extractor
    registered ``trylast``; register your own (an LLM-based one, say) to
    replace it.

    :param text: the user's message.
    :param message: the :class:`IncomingMessage` it came in.
    :param known: the person's current facts (list of :class:`Fact`).
    :returns: a list of :class:`Fact` (``learned_at`` may be empty), an
        awaitable of one, or ``None`` to pass.
    """


# ---------------------------------------------------------------- contributions and observers


@hookspec
def assemble_context(request: Any) -> Any:
    """Contribute parts of a turn's context.  *Contribution hook, may be async.*

    :param request: a :class:`ContextRequest` (agent, route, message, store, memory settings).
    :returns: a list of :class:`ContextPart` (or ``None``). The core puts the
        soul first, then facts by relevance, then the window's turns oldest
        first, then the new message, and trims to ``[memory] context_tokens``
        by dropping the least relevant facts, then the oldest turns.
    """


@hookspec
def before_llm_call(call: Any) -> Any:
    """Check or adjust an LLM call before it is made.  *Called before every call of a turn.*

    :param call: an :class:`LLMCall`.
    :returns: ``None``, or a replacement :class:`LLMRequest`.
    :raises BudgetExceeded: to refuse the call (no provider request is made).
    """


@hookspec
def after_llm_call(call: Any, result: Any) -> Any:
    """Observe an LLM call's outcome.  *Observer, may be async; also called for failed calls.*

    :param call: the :class:`LLMCall` given to ``before_llm_call``.
    :param result: an :class:`LLMCallResult` (usage, duration, error).
    :returns: ``None``, or a dict ``{"cost_usd": float, "priced": bool}``
        that the core adds into the turn's ``usage`` event.
    """


@hookspec
def after_turn(turn: Any) -> Any:
    """Learn from a committed turn.  *Observer, may be async.*

    :param turn: a :class:`CompletedTurn`.
    """


@hookspec
def list_tools(agent: Any) -> Any:
    """Offer tools to an agent's model.  *Contribution hook.*

    :param agent: the :class:`AgentConfig` (respect ``agent.tools`` when set).
    :returns: a list of :class:`ToolSpec`.
    """


@hookspec
def status_info(host: Any) -> Any:
    """Add fields to the ``status`` RPC.  *Contribution hook, may be async.*

    :returns: a dict merged into the status result, or ``None``.
    """


@hookspec
def plugin_report(host: Any) -> Any:
    """Describe the sandboxed (WASM) plugins you manage.  *Contribution hook.*

    :returns: a list of dicts ``{"name", "kind", "tools", "capabilities",
        "loaded": bool, "reason", "path", "not_granted"}``.
    """


@hookspec
def gateway_startup(host: Any) -> Any:
    """The gateway is starting.  *Observer, may be async.*

    ``host.app`` is the aiohttp application: add routes here. Slow start-up
    work (compiling modules) belongs here; the port opens after every
    implementation returned.
    """


@hookspec
def gateway_shutdown(host: Any) -> Any:
    """The gateway is stopping.  *Observer, may be async.* Release what you hold."""
