"""The core's tables of the config file: one marshmallow schema each (SPEC §3).

The core owns ``[gateway]``, ``[agent]``/``[agents.ID]`` and ``[hooks]``;
every other table belongs to the plugin that declares it
(``register_settings``) and is joined to :func:`config_schema` at load.
Schemas only check the shape and each value on its own, and load to plain
dicts holding only the keys the file gave; defaults, environment variables
and checks across sections are ``build.py``'s and ``checks.py``'s work.
Unknown keys are errors everywhere (``unknown=RAISE``): they are almost
always typos.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Mapping

from marshmallow import Schema, ValidationError, fields

from exoclaw_hooks import config as f
from exoclaw_hooks.config import Bool, Int, Num, Section, Str, StrList, Table

__all__ = [
    "AgentSchema",
    "ConfigSchema",
    "FallbackSchema",
    "GatewaySchema",
    "HooksSchema",
    "StoreSchema",
    "NamedAgentSchema",
    "config_schema",
]

#: the provider names valid for this load (those the plugins register); ``None``:
#: any name passes. A ContextVar because marshmallow 4 has no schema context.
KNOWN_PROVIDERS: ContextVar[tuple[str, ...] | None] = ContextVar("known_providers", default=None)


def provider(value: str) -> None:
    known = KNOWN_PROVIDERS.get()
    if known is not None and value not in known:
        raise ValidationError(f"must be one of {', '.join(known)}")



def _m(doc: str, **more: Any) -> dict[str, Any]:
    """A field's metadata: its documentation and (``example=`` / ``hint=``) the value the example config shows."""
    return {"doc": doc, **more}


class GatewaySchema(Section):
    """The gateway: where it listens and who may talk to it."""

    bind = Str(validate=f.host, metadata=_m(
        "Address to listen on: an IP or a hostname. Anything but loopback (127.0.0.0/8, ::1, localhost) "
        "requires a token.", example="127.0.0.1"))
    port = Int(minimum=0, maximum=65535, metadata=_m("TCP port, 0..65535 (0 = any free port).", example=7200))
    token = Str(allow_empty=True, metadata=_m(  # empty counts as none
        "Shared secret clients must present (WebSocket first frame, or Authorization: Bearer). Prefer "
        "$EXOCLAW_TOKEN, which wins over this key; an empty token counts as none, a whitespace-only one is an "
        "error. Beyond loopback it needs at least 16 non-space characters.", hint="change-me"))
    max_message_bytes = Int(minimum=1, metadata=_m(
        "Largest WebSocket frame / webhook body / OpenAI request accepted, in bytes.", example=1048576))
    allowed_origins = StrList(metadata=_m(
        "Browser origins allowed to open /ws and call /v1 besides loopback ones, e.g. \"https://chat.example.com\".",
        example=[]))
    ws_compression = Bool(metadata=_m(
        "permessage-deflate on /ws. Off by default: replies stream as many small frames, where compressing costs "
        "more CPU and memory per connection than it saves (README, \"WebSocket compression\"). On for slow links.",
        example=False))
    header_timeout_s = Num(positive=True, metadata=_m(
        "Seconds a new connection has to send a whole request head.", example=10))
    body_timeout_s = Num(positive=True, metadata=_m(
        "Seconds a request body (OpenAI face, webhooks) may take to arrive; then 408.", example=30))
    idle_timeout_s = Num(positive=True, metadata=_m("Seconds an idle keep-alive HTTP connection stays open.",
                                                    example=60))
    max_connections = Int(minimum=1, metadata=_m(
        "Most client connections held at once. When absent: three quarters of the files the process may still "
        "open (ulimit -n), at most 10,000. At the cap a newcomer replaces the oldest idle connection; when all "
        "are busy it gets a 503.", hint=1000))


class FallbackSchema(Section):
    """Used when the primary provider fails before any output was streamed."""

    provider = Str(required=True, validate=provider, metadata=_m("The fallback's provider (required).",
                                                                 example="openai"))
    model = Str(required=True, metadata=_m("The fallback's model (required).", example="gpt-4o"))
    max_tokens = Int(minimum=1, metadata=_m("Most tokens a reply may have (default: the agent's).", hint=4096))
    base_url = Str(validate=f.http_url, metadata=_m("The provider's endpoint (default: the provider's own).",
                                                    hint="https://api.openai.com/v1"))
    api_key = Str(allow_empty=True, metadata=_m(
        "API key (default: the provider's environment variable, e.g. $OPENAI_API_KEY).", hint="sk-..."))


class AgentSchema(Section):
    """The default agent: who answers when no binding says otherwise."""

    id = Str(metadata=_m('Its id (default "default"); bindings and budgets refer to agents by id.',
                         example="personal"))
    provider = Str(validate=provider, metadata=_m(
        "anthropic | openai | echo | a provider added by a plugin. When absent: anthropic if $ANTHROPIC_API_KEY "
        "is set, else openai if $OPENAI_API_KEY is set, else echo (offline, deterministic).", example="echo"))
    model = Str(metadata=_m('Model id. Defaults: anthropic "claude-sonnet-4-5", openai "gpt-4o-mini", echo "echo".',
                            example="echo"))
    max_tokens = Int(minimum=1, metadata=_m("Most tokens a reply may have.", example=4096))
    base_url = Str(validate=f.http_url, metadata=_m(
        "Provider endpoint (Anthropic: https://api.anthropic.com, OpenAI: https://api.openai.com/v1). Point it "
        "at any compatible server, e.g. a local model's http://127.0.0.1:8080/v1.",
        hint="https://api.anthropic.com"))
    api_key = Str(allow_empty=True, metadata=_m(
        "API key; by default $ANTHROPIC_API_KEY or $OPENAI_API_KEY, by provider. Prefer the environment "
        "variable to writing a key here.", hint="sk-..."))
    system_prompt = Str(allow_empty=True, metadata=_m("Base system prompt.", example="You are a helpful assistant."))
    soul_path = Str(metadata=_m(
        "The agent's soul: personality and instructions, always first in the context and reloaded when the "
        "file changes. Default: none.", hint="~/.exoclaw/soul.md"))
    tools = StrList(metadata=_m("Tool names this agent may use; absent = every loaded tool, [] = none.",
                                example=["echo", "remember", "recall", "fetch"]))
    max_tool_iterations = Int(minimum=1, metadata=_m("Most model ⇄ tool round trips in one turn.", example=10))
    max_tool_result_tokens = Int(minimum=64, metadata=_m(
        "A tool result longer than this (estimated tokens) is cut before the model sees it; the cut is marked.",
        example=2000))
    timeout_s = Num(positive=True, metadata=_m(
        "Seconds a provider may stay silent between two chunks (and to connect).", example=120))
    first_byte_timeout_s = Num(positive=True, metadata=_m(
        "Seconds a provider call may take to send its first event; longer and it is cut.", example=60))
    call_timeout_s = Num(positive=True, metadata=_m(
        "Seconds a whole provider call may take (an upstream that pings or trickles forever is cut).", example=300))
    turn_timeout_s = Num(positive=True, metadata=_m(
        "Seconds a whole turn may take, its tool loop included; retries wait only within it.", example=600))
    fallback = f.Nested(FallbackSchema, metadata=_m(
        "Used when the primary provider fails before any output was streamed ([agent.fallback]; provider and "
        "model are required)."))
    #: provider-specific knobs, free-form (echo: ``chunk_delay_s``)
    options = Table(metadata=_m(
        "Provider-specific settings, free-form (echo: chunk_delay_s, seconds between streamed chunks; "
        "anthropic/openai: connect_timeout_s, read_timeout_s).", example={"chunk_delay_s": 0.02}))


class NamedAgentSchema(AgentSchema):
    """``[agents.NAME]``: the same keys as ``[agent]``, the table name is the id."""

    id = Str(validate=f.forbidden("not allowed here, the table name [agents.NAME] is the agent's id"),
             metadata={"skip": True})


class HooksSchema(Section):
    """Which pluggy plugins run."""

    disable = StrList(metadata=_m('Builtin or installed plugins to leave out, e.g. ["memory-semantic"].',
                                  example=[]))
    load = StrList(metadata=_m('Extra importable modules to register, e.g. ["mycompany.exoclaw_audit"].',
                               example=[]))


def _store_url(value: str) -> None:
    if value and "://" not in value:
        raise ValidationError("must be empty (SQLite in the data directory) or a URL like postgresql://user@host/db")


class StoreSchema(Section):
    """Where the gateway keeps what it stores."""

    url = Str(allow_empty=True, validate=_store_url, metadata=_m(
        "Empty (the default): SQLite in the data directory, for one gateway. A URL whose scheme a store plugin "
        "registered, e.g. postgresql://exoclaw@127.0.0.1:5432/exoclaw, shares one database between several "
        "gateways (README, \"Several gateways on one PostgreSQL\"). $EXOCLAW_STORE_URL wins over this key. Prefer "
        "a password in $PGPASSWORD or ~/.pgpass to one in the URL.", example=""))
    lease_s = Num(positive=True, metadata=_m(
        "Seconds a gateway's claim on a webhook delivery lasts unless it renews it (it does, every third of "
        "this, while it works on the delivery): a gateway that dies leaves its deliveries to another gateway "
        "after at most this long.", example=30))


class ConfigSchema(Section):
    """The whole file."""

    gateway = f.Nested(GatewaySchema, metadata=_m("The gateway: where it listens and who may talk to it."))
    agent = f.Nested(AgentSchema, metadata=_m("The default agent: who answers when no binding says otherwise."))
    agents = Table(f.Nested(NamedAgentSchema), metadata=_m(
        "More agents: the same keys as [agent] (with .fallback and .options); the table name is the id, so no "
        "`id` key here. A chat client picks one with `exoclaw chat --agent NAME`, the OpenAI API with "
        "model = NAME, a channel through [[bindings]].", list_keys=False,
        example={"work": {"provider": "echo", "system_prompt": "You are a concise work assistant.",
                          "tools": ["fetch"]}},
        hint={"research": {"provider": "openai", "model": "gpt-4o-mini",
                           "fallback": {"provider": "anthropic", "model": "claude-haiku-4-5"}}}))
    hooks = f.Nested(HooksSchema, metadata=_m("Which pluggy plugins run."))
    store = f.Nested(StoreSchema, metadata=_m("Where the gateway keeps what it stores."))


#: the core's own top-level tables (no plugin may declare them)
CORE_TABLES = tuple(ConfigSchema._declared_fields)


def config_schema(plugin_fields: Mapping[str, fields.Field]) -> Schema:
    """The whole file's schema: the core's tables and every plugin's."""
    if not plugin_fields:
        return ConfigSchema()
    cls: Any = type("FileSchema", (ConfigSchema,), dict(plugin_fields))
    return cls()
