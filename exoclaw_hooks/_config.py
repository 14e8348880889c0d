"""The validated configuration, as the core hands it to plugins (frozen dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

# --------------------------------------------------------------------------
# Configuration, as handed to plugins (the core validates and builds it)
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    """What a provider factory needs to build a client for one agent."""

    provider: str
    model: str
    max_tokens: int = 4096
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 120.0
    #: provider-specific knobs (echo: ``chunk_delay_s``)
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AgentConfig:
    id: str
    provider: str
    model: str
    max_tokens: int = 4096
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    system_prompt: str = ""
    soul_path: str | None = None
    #: tool names this agent may use; ``None`` = every loaded tool
    tools: tuple[str, ...] | None = None
    max_tool_iterations: int = 10
    #: a tool result longer than this (estimated tokens) is cut, with a mark, before the model sees it
    max_tool_result_tokens: int = 2000
    timeout_s: float = 120.0
    fallback: ProviderSettings | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def provider_settings(self) -> ProviderSettings:
        return ProviderSettings(
            provider=self.provider,
            model=self.model,
            max_tokens=self.max_tokens,
            base_url=self.base_url,
            api_key=self.api_key,
            timeout_s=self.timeout_s,
            options=self.options,
        )


@dataclass(frozen=True, slots=True)
class Binding:
    channel: str
    agent_id: str
    peer_id: str | None = None
    guild_id: str | None = None
    team_id: str | None = None
    account_id: str | None = None


@dataclass(frozen=True, slots=True)
class BudgetLimits:
    session: int | None = None
    daily: int | None = None
    monthly: int | None = None


@dataclass(frozen=True, slots=True)
class BudgetsConfig:
    session: int | None = None
    daily: int | None = None
    monthly: int | None = None
    agents: Mapping[str, BudgetLimits] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None


@dataclass(frozen=True, slots=True)
class MemoryConfig:
    episodic_window: int = 5
    semantic_enabled: bool = True
    context_tokens: int = 4000


@dataclass(frozen=True, slots=True)
class WasmPluginConfig:
    name: str
    path: str
    capabilities: tuple[str, ...] = ()
    secrets: Mapping[str, str] = field(default_factory=dict)  # name -> env var name
    config: Mapping[str, str] = field(default_factory=dict)
    timeout_ms: int = 1000
    memory_max_pages: int = 256
    max_output_bytes: int = 1024 * 1024
    sha256: str | None = None
    #: calls of this plugin running at once (all sessions together); more wait their turn
    max_concurrency: int = 4
    #: calls of this plugin running at once for one session
    max_concurrency_per_session: int = 2


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    bind: str = "127.0.0.1"
    port: int = 7200
    token: str | None = field(default=None, repr=False)
    max_message_bytes: int = 1024 * 1024
    allowed_origins: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class HooksConfig:
    disable: tuple[str, ...] = ()
    load: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Settings:
    """The whole validated configuration."""

    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    agents: Mapping[str, AgentConfig] = field(default_factory=dict)
    default_agent: str = "default"
    budgets: BudgetsConfig = field(default_factory=BudgetsConfig)
    pricing: Mapping[str, Price] = field(default_factory=dict)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    hooks: HooksConfig = field(default_factory=HooksConfig)
    plugins: tuple[WasmPluginConfig, ...] = ()
    bindings: tuple[Binding, ...] = ()
    #: directory of the config file (relative paths resolve against it)
    config_dir: str = "."
    #: data directory ($EXOCLAW_HOME)
    data_dir: str = "~/.exoclaw"
    config_path: str | None = None
