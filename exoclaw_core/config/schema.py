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
from exoclaw_hooks.config import Int, Num, Section, Str, StrList, Table

__all__ = [
    "AgentSchema",
    "ConfigSchema",
    "FallbackSchema",
    "GatewaySchema",
    "HooksSchema",
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



class GatewaySchema(Section):
    bind = Str(validate=f.host)
    port = Int(minimum=0, maximum=65535)
    token = Str(allow_empty=True)  # empty counts as none
    max_message_bytes = Int(minimum=1)
    allowed_origins = StrList()


class FallbackSchema(Section):
    """``[agent.fallback]``: used when the primary provider fails before any output."""

    provider = Str(required=True, validate=provider)
    model = Str(required=True)
    max_tokens = Int(minimum=1)
    base_url = Str(validate=f.http_url)
    api_key = Str(allow_empty=True)


class AgentSchema(Section):
    """``[agent]``, the default agent."""

    id = Str()
    provider = Str(validate=provider)
    model = Str()
    max_tokens = Int(minimum=1)
    base_url = Str(validate=f.http_url)
    api_key = Str(allow_empty=True)
    system_prompt = Str(allow_empty=True)
    soul_path = Str()
    tools = StrList()
    max_tool_iterations = Int(minimum=1)
    timeout_s = Num(positive=True)
    first_byte_timeout_s = Num(positive=True)
    call_timeout_s = Num(positive=True)
    turn_timeout_s = Num(positive=True)
    fallback = f.Nested(FallbackSchema)
    #: provider-specific knobs, free-form (echo: ``chunk_delay_s``)
    options = Table()


class NamedAgentSchema(AgentSchema):
    """``[agents.NAME]``: the same keys as ``[agent]``, the table name is the id."""

    id = Str(validate=f.forbidden("not allowed here, the table name [agents.NAME] is the agent's id"))


class HooksSchema(Section):
    disable = StrList()
    load = StrList()


class ConfigSchema(Section):
    """The whole file."""

    gateway = f.Nested(GatewaySchema)
    agent = f.Nested(AgentSchema)
    agents = Table(f.Nested(NamedAgentSchema))
    hooks = f.Nested(HooksSchema)


#: the core's own top-level tables (no plugin may declare them)
CORE_TABLES = tuple(ConfigSchema._declared_fields)


def config_schema(plugin_fields: Mapping[str, fields.Field]) -> Schema:
    """The whole file's schema: the core's tables and every plugin's."""
    if not plugin_fields:
        return ConfigSchema()
    cls: Any = type("FileSchema", (ConfigSchema,), dict(plugin_fields))
    return cls()
