"""Shared pieces of the memory tests: a request recorder, a scripted provider plugin, settings.

Imported as ``tests.builtin_plugins.memory.memory_helpers`` (like ``provider_helpers``).
"""

from __future__ import annotations

from typing import Any

from exoclaw_hooks import AgentConfig, LLMRequest, hookimpl
from builtin_plugins.memory.settings import MemoryConfig
from exoclaw_hooks.testing import ScriptedProvider
from tests.harness import make_settings


class Recorder:
    """A test plugin that keeps every LLM request the gateway is about to send (any provider)."""

    def __init__(self) -> None:
        self.requests: list[LLMRequest] = []

    @hookimpl
    def before_llm_call(self, call: Any) -> None:
        self.requests.append(call.request)


class Scripted:
    """Registers a :class:`ScriptedProvider` as provider ``scripted``."""

    def __init__(self, provider: ScriptedProvider):
        self.provider = provider

    @hookimpl
    def register_providers(self, register: Any) -> None:
        register("scripted", self.provider.factory)


def request_chars(request: LLMRequest) -> int:
    """Characters of system + messages (texts, tool calls, tool results): what tokens are estimated from."""
    n = len(request.system)
    for m in request.messages:
        n += len(m.content) + sum(len(r.content) for r in m.tool_results)
        n += sum(len(c.name) + len(str(dict(c.input))) for c in m.tool_calls)
    return n


def memory_settings(tmp_path: Any, *, soul: str | None = None, provider: str = "echo", **memory: Any):
    agent = AgentConfig(
        id="default", provider=provider, model="echo" if provider == "echo" else "m1",
        soul_path=soul, options={"chunk_delay_s": 0} if provider == "echo" else {},
    )
    memory.setdefault("extractor", "rules")  # these tests are about the offline extractor, whatever the provider
    return make_settings(data_dir=tmp_path, agents=[agent], memory=MemoryConfig(**memory))


def chat(content: str, account: str = "alice", peer: str = "main") -> dict[str, str]:
    return {"channel": "test", "account": account, "peer": peer, "content": content}


SESSION = "default:test:alice:main"


async def wait_for_facts(client: Any, params: dict[str, Any], timeout: float = 5.0) -> list[dict[str, Any]]:
    """``memory.search`` until it finds something.

    ``done`` is sent once the turn is committed; the facts are learned just
    after (``after_turn``, still holding that session's lane). The same
    session's next turn always sees them; another session of the same person
    may start before they are stored, so tests that switch sessions wait.
    """
    import asyncio

    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = (await client.request("memory.search", params))["result"]
        if found or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.01)
