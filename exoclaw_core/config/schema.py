"""The config file's shape: one marshmallow schema per TOML section (SPEC §3).

Schemas only check the shape and each value on its own, and load to plain
dicts holding only the keys the file gave; defaults, environment variables
and checks across sections are ``build.py``'s and ``checks.py``'s work, so
the defaults live in one place (the dataclasses of ``exoclaw_hooks``).
Unknown keys are errors everywhere (``unknown=RAISE``): they are almost
always typos.
"""

from __future__ import annotations

from marshmallow import RAISE, Schema

from . import fields as f
from .fields import Bool, Int, Num, Str, StrList, Table, TableArray

__all__ = [
    "AgentSchema",
    "BindingSchema",
    "BudgetLimitsSchema",
    "BudgetsSchema",
    "ConfigSchema",
    "FallbackSchema",
    "GatewaySchema",
    "HooksSchema",
    "MemorySchema",
    "NamedAgentSchema",
    "PluginSchema",
    "PriceSchema",
]


class Section(Schema):
    """Base of every section: unknown keys raise, messages are ours."""

    class Meta:
        unknown = RAISE

    error_messages = {"unknown": f.UNKNOWN, "type": f.NOT_TABLE}


class GatewaySchema(Section):
    bind = Str(validate=f.host)
    port = Int(minimum=0, maximum=65535)
    token = Str(allow_empty=True)  # empty counts as none
    max_message_bytes = Int(minimum=1)
    allowed_origins = StrList()


class FallbackSchema(Section):
    """``[agent.fallback]``: used when the primary provider fails before any output."""

    provider = Str(required=True, validate=f.provider)
    model = Str(required=True)
    max_tokens = Int(minimum=1)
    base_url = Str(validate=f.http_url)
    api_key = Str(allow_empty=True)


class AgentSchema(Section):
    """``[agent]``, the default agent."""

    id = Str()
    provider = Str(validate=f.provider)
    model = Str()
    max_tokens = Int(minimum=1)
    base_url = Str(validate=f.http_url)
    api_key = Str(allow_empty=True)
    system_prompt = Str(allow_empty=True)
    soul_path = Str()
    tools = StrList()
    max_tool_iterations = Int(minimum=1)
    max_tool_result_tokens = Int(minimum=64)
    timeout_s = Num(positive=True)
    fallback = f.Nested(FallbackSchema)
    #: provider-specific knobs, free-form (echo: ``chunk_delay_s``)
    options = Table()


class NamedAgentSchema(AgentSchema):
    """``[agents.NAME]``: the same keys as ``[agent]``, the table name is the id."""

    id = Str(validate=f.forbidden("not allowed here, the table name [agents.NAME] is the agent's id"))


class BudgetLimitsSchema(Section):
    """Tokens (input + output); absent = unlimited."""

    session = Int(minimum=0)
    daily = Int(minimum=0)
    monthly = Int(minimum=0)


class BudgetsSchema(BudgetLimitsSchema):
    agents = Table(f.Nested(BudgetLimitsSchema))


class PriceSchema(Section):
    """USD per million tokens."""

    input = Num(required=True)
    output = Num(required=True)
    cache_read = Num()
    cache_write = Num()


class MemorySchema(Section):
    episodic_window = Int(minimum=0)
    semantic_enabled = Bool()
    context_tokens = Int(minimum=1)


class HooksSchema(Section):
    disable = StrList()
    load = StrList()


class PluginSchema(Section):
    """One ``[[plugins]]`` entry (a WASM plugin)."""

    name = Str(required=True)
    path = Str(required=True)
    capabilities = StrList(validate_item=f.capability)
    secrets = Table(Str(validate=f.env_name))
    config = Table(Str(allow_empty=True))
    timeout_ms = Int(minimum=1)
    memory_max_pages = Int(minimum=1, maximum=65536)
    max_output_bytes = Int(minimum=1)
    sha256 = Str(validate=f.sha256)
    max_concurrency = Int(minimum=1, maximum=256)
    max_concurrency_per_session = Int(minimum=1, maximum=256)


class BindingSchema(Section):
    """One ``[[bindings]]`` entry: routing by message fields."""

    channel = Str(required=True)
    agent_id = Str(required=True)
    peer_id = Str()
    guild_id = Str()
    team_id = Str()
    account_id = Str()


class ConfigSchema(Section):
    """The whole file."""

    gateway = f.Nested(GatewaySchema)
    agent = f.Nested(AgentSchema)
    agents = Table(f.Nested(NamedAgentSchema))
    budgets = f.Nested(BudgetsSchema)
    pricing = Table(f.Nested(PriceSchema), key_validate=f.pricing_key)
    memory = f.Nested(MemorySchema)
    hooks = f.Nested(HooksSchema)
    plugins = TableArray(PluginSchema, label_key="name")
    bindings = TableArray(BindingSchema, label_key="channel")
