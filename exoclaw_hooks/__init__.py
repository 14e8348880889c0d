"""The public plugin API of Exoclaw.

A plugin is a module (or a class, instantiated once per gateway) with
``@hookimpl`` functions, published under the entry-point group ``exoclaw``::

    [project.entry-points.exoclaw]
    myplugin = "mypkg.plugin"

What is here: the ``hookimpl`` marker (the hooks themselves are documented in
``exoclaw_hooks._specs``), the types hooks exchange, the errors a plugin may
raise, and ``SettingsTable`` for a plugin's own config table.
``exoclaw_hooks.config`` has the fields to write that table's schema, and
``exoclaw_hooks.testing`` a kit for a plugin's tests. This package imports
pluggy and the standard library only (``exoclaw_hooks.config`` adds
marshmallow, a dependency of Exoclaw itself).
"""

from ._config import AgentConfig, ProviderInfo, ProviderSettings
from ._errors import (
    BudgetExceeded,
    ChannelError,
    ConfigError,
    ExoclawError,
    InvalidParams,
    ProviderError,
    ToolError,
)
from ._host import HookCaller, Host
from ._settings import ConfigContext, SettingsTable
from ._specs import hookimpl
from ._tokens import count_chars, estimate_tokens
from ._logs import log_value
from ._storage import (
    INBOX_STATES,
    InboxItem,
    SessionInfo,
    Store,
    StoredMessage,
    StoreUnavailable,
    UsageRecord,
    iso_utc,
    normalize_ts,
    safe_url,
    url_password,
)
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
    LLMReply,
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
    make_person_key,
    make_session_key,
    split_session_key,
)

__all__ = [
    "hookimpl", "estimate_tokens", "count_chars", "log_value",
    # errors
    "ExoclawError", "ConfigError", "BudgetExceeded", "ProviderError", "ToolError", "ChannelError",
    "InvalidParams",
    # configuration
    "AgentConfig", "ProviderSettings", "ProviderInfo", "SettingsTable", "ConfigContext",
    # the running gateway
    "Host", "HookCaller", "Store", "SessionInfo", "StoredMessage", "UsageRecord", "InboxItem", "INBOX_STATES",
    "StoreUnavailable", "safe_url", "url_password", "iso_utc", "normalize_ts",
    # messages, routes, turns
    "IncomingMessage", "Route", "Message", "Turn", "CompletedTurn", "make_session_key", "make_person_key",
    "split_session_key",
    # LLM calls
    "LLMRequest", "LLMCall", "LLMCallResult", "LLMReply", "Usage", "Provider", "StreamEvent", "TextDelta",
    "ToolUseEvent", "StreamEnd",
    # tools
    "ToolSpec", "ToolCall", "ToolResult", "ToolContext",
    # memory
    "ContextRequest", "ContextPart", "ContextPolicy", "Fact",
    # channels
    "WebhookRequest", "Ignore", "OutgoingReply", "OutgoingRequest",
]
