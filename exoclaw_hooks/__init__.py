"""The public plugin API of Exoclaw.

A plugin is a module (or a class, instantiated once per gateway) with
``@hookimpl`` functions, published under the entry-point group ``exoclaw``::

    [project.entry-points.exoclaw]
    myplugin = "mypkg.plugin"

This package imports pluggy and the standard library only.
"""

from ._errors import (
    BudgetExceeded,
    ChannelError,
    ConfigError,
    ExoclawError,
    InvalidParams,
    ProviderError,
    ToolError,
)
from ._specs import DECISION_HOOKS, PROJECT, hookimpl, hookspec
from ._config import (
    AgentConfig,
    Binding,
    BudgetLimits,
    BudgetsConfig,
    GatewayConfig,
    HooksConfig,
    MemoryConfig,
    Price,
    ProviderSettings,
    Settings,
    WasmPluginConfig,
)
from ._storage import RESERVED_NAMESPACES, HookCaller, Host, InboxItem, SessionInfo, Store, UsageRecord
from ._types import (
    CompletedTurn,
    ContextPart,
    ContextRequest,
    Fact,
    Ignore,
    IncomingMessage,
    LLMCall,
    LLMCallResult,
    LLMRequest,
    Message,
    OutgoingReply,
    OutgoingRequest,
    Provider,
    Route,
    StreamEnd,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolContext,
    ToolResult,
    ToolSpec,
    ToolUseEvent,
    Turn,
    Usage,
    WebhookRequest,
    escape_key_part,
    make_person_key,
    make_session_key,
    split_session_key,
)

__all__ = [
    "PROJECT", "DECISION_HOOKS", "RESERVED_NAMESPACES", "hookimpl", "hookspec",
    "ExoclawError", "ConfigError", "BudgetExceeded", "ProviderError", "ToolError",
    "ChannelError", "InvalidParams",
    "AgentConfig", "Binding", "BudgetLimits", "BudgetsConfig", "CompletedTurn", "ContextPart",
    "ContextRequest", "Fact", "GatewayConfig", "HookCaller", "HooksConfig", "Host", "Ignore",
    "InboxItem", "IncomingMessage", "LLMCall", "LLMCallResult", "LLMRequest", "MemoryConfig",
    "Message", "OutgoingReply", "OutgoingRequest", "Price", "Provider", "ProviderSettings",
    "Route", "SessionInfo", "Settings", "Store", "StreamEnd", "StreamEvent", "TextDelta",
    "ToolCall", "ToolContext", "ToolResult", "ToolSpec", "ToolUseEvent", "Turn", "Usage",
    "UsageRecord", "WasmPluginConfig", "WebhookRequest",
    "escape_key_part", "make_person_key", "make_session_key", "split_session_key",
]
