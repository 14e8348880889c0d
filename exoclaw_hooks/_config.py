"""An agent and its provider, as the core hands them to plugins (frozen dataclasses).

Everything else a plugin configures it declares itself (:class:`SettingsTable`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping

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
    """One agent (``[agent]`` or ``[agents.ID]``).

    Hooks receive it without its API keys (``api_key`` is ``None`` there):
    only the provider factory of the agent's own provider gets a key.
    """

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
    #: a provider's silence between two chunks (connect too), seconds
    timeout_s: float = 120.0
    #: a call's deadlines: its first event, and the whole call (a trickling upstream is cut)
    first_byte_timeout_s: float = 60.0
    call_timeout_s: float = 300.0
    #: the whole turn, tool loop included; retries wait only within it
    turn_timeout_s: float = 600.0
    fallback: ProviderSettings | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def public(self) -> "AgentConfig":
        """This agent without its API keys (what hooks receive)."""
        fallback = self.fallback
        if fallback is not None and fallback.api_key is not None:
            fallback = replace(fallback, api_key=None)
        if self.api_key is None and fallback is self.fallback:
            return self
        return replace(self, api_key=None, fallback=fallback)

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
class ProviderInfo:
    """A provider as ``register_providers`` registered it.

    :param default_model: the model an agent gets when it names this provider
        but no model (``None``: the agent must name one).
    :param key_env: the environment variable holding the API key when the
        agent's table has no ``api_key`` (``None``: no key is needed).
    :param auto: zero-config preference, lower first: with no ``[agent]
        provider`` the gateway picks the provider of lowest ``auto`` whose key
        is set (or that needs none); ``None`` = never picked by itself.
    """

    name: str
    factory: Callable[[ProviderSettings], Any]
    default_model: str | None = None
    key_env: str | None = None
    auto: int | None = None


def provider_register(into: dict[str, ProviderInfo]) -> Callable[..., None]:
    """The ``register`` callback ``register_providers`` is given: each call files a :class:`ProviderInfo`."""

    def register(
        name: str, factory: Callable[[ProviderSettings], Any], *, default_model: str | None = None,
        key_env: str | None = None, auto: int | None = None,
    ) -> None:
        into[name] = ProviderInfo(name, factory, default_model, key_env, auto)

    return register
