"""Small helpers shared by the Anthropic and OpenAI provider tests."""

from __future__ import annotations

from typing import Any

from builtin_plugins.providers import anthropic as anthropic_plugin
from builtin_plugins.providers import openai as openai_plugin
from exoclaw_hooks.testing import providers_of
from exoclaw_hooks import LLMRequest, Message, ProviderError, ProviderSettings, TextDelta, ToolUseEvent

PLUGINS = {"anthropic": anthropic_plugin, "openai": openai_plugin}


def base_url(api: str, server: Any) -> str:
    return server.url if api == "anthropic" else server.openai_url


def make_provider(api: str, host: Any, url: str | None, *, api_key: str | None = "test-key",
                  timeout_s: float = 5.0, model: str = "fake-model", **options: Any) -> Any:
    """Build the provider the way the core does: through ``register_providers``."""
    settings = ProviderSettings(provider=api, model=model, base_url=url, api_key=api_key,
                                timeout_s=timeout_s, options=options)
    return providers_of(PLUGINS[api], host)[api].factory(settings)


def ask(text: str = "hello", **kwargs: Any) -> LLMRequest:
    kwargs.setdefault("model", "fake-model")
    kwargs.setdefault("system", "")
    return LLMRequest(messages=(Message("user", text),), **kwargs)


async def collect(provider: Any, request: LLMRequest | None = None) -> list[Any]:
    return [event async for event in provider.stream(request or ask())]


async def collect_until_error(provider: Any, request: LLMRequest | None = None) -> tuple[list[Any], ProviderError]:
    """The events yielded before the stream failed, and the error (the test fails if none)."""
    events: list[Any] = []
    try:
        async for event in provider.stream(request or ask()):
            events.append(event)
    except ProviderError as exc:
        return events, exc
    raise AssertionError(f"the stream did not fail: {events}")


def text_of(events: list[Any]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def calls_of(events: list[Any]) -> list[Any]:
    return [e.call for e in events if isinstance(e, ToolUseEvent)]
