"""Feed a conversation to a real gateway, then ask questions and capture what the model would receive.

Used by the memory tests (generated scenarios) and by ``benches/bench_locomo.py``::

    run = await converse(turns, questions)          # the default [memory] settings
    run.contexts[i]       # system prompt + messages the model got for questions[i], as one text

* The gateway is :func:`tests.harness.running_gateway` with the builtin
  plugins loaded through their entry points, a persistent SQLite store in
  a temporary directory (its clock is settable: a turn may carry the time
  it was said), and :class:`CapturingProvider` as the agent's model.
* Every conversation turn is a WebSocket ``chat.send`` of one session of
  one person; the model answers ``OK.``.
* Every question is a turn of that session too: the provider records the
  request (system prompt + messages) and fails the call with a
  non-retryable provider error, so — by the agent loop's own rule — the
  turn stores nothing and learns nothing. Every question sees exactly the
  memory the conversation left.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Sequence

from exoclaw_core.store.sqlite import open_store
from exoclaw_hooks import (
    AgentConfig,
    LLMRequest,
    ProviderError,
    StreamEnd,
    StreamEvent,
    TextDelta,
    Usage,
    hookimpl,
    make_session_key,
)
from tests.harness import make_settings, running_gateway

SYSTEM_PROMPT = "You are a helpful assistant."
NOT_STORED = "question recorded, not answered (nothing is stored)"
REPLY = "OK."


class CapturingProvider:
    """Provider ``capture``: ``OK.`` to conversation turns; while ``asking``, records the request and fails."""

    name = "capture"

    def __init__(self) -> None:
        self.asking = False
        self.captured: list[LLMRequest] = []

    def factory(self, settings: Any) -> "CapturingProvider":
        return self

    @hookimpl
    def register_providers(self, register: Any) -> None:
        register(self.name, self.factory)

    async def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        if self.asking:
            self.captured.append(request)
            raise ProviderError(NOT_STORED)
        yield TextDelta(REPLY)
        yield StreamEnd("end_turn", Usage(1, 1))


def request_text(request: LLMRequest) -> str:
    """What the model receives, as one text: the system prompt, then every message."""
    parts = [request.system]
    for m in request.messages:
        parts.append(m.content)
        parts.extend(r.content for r in m.tool_results)
    return "\n".join(p for p in parts if p)


@dataclass(frozen=True)
class Said:
    """One conversation turn: its content and, optionally, when it was said (the store's clock)."""

    content: str
    at: dt.datetime | None = None


@dataclass
class Conversation:
    contexts: list[str] = field(default_factory=list)
    requests: list[LLMRequest] = field(default_factory=list)
    stored_messages: int = 0


CHANNEL, ACCOUNT, PEER = "chat", "person", "main"


async def converse(
    turns: Sequence[Said | str],
    questions: Sequence[str],
    memory: Any = None,
    *,
    channel: str = CHANNEL,
    account: str = ACCOUNT,
    peer: str = PEER,
    asked_at: dt.datetime | None = None,
    system_prompt: str = SYSTEM_PROMPT,
    timeout: float = 60.0,
) -> Conversation:
    """Feed ``turns`` to a fresh gateway, then capture the model's request for each of ``questions``.

    ``memory`` is the ``[memory]`` settings as :func:`tests.harness.make_settings` takes them
    (``None``: the defaults).
    """
    provider = CapturingProvider()
    now = [dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)]
    agent = AgentConfig(id="default", provider=provider.name, model="m", system_prompt=system_prompt)
    out = Conversation()

    def params(content: str) -> dict[str, str]:
        return {"channel": channel, "account": account, "peer": peer, "content": content}

    with tempfile.TemporaryDirectory(prefix="exoclaw-conv-") as tmp:
        extra = {} if memory is None else {"memory": memory}
        settings = make_settings(data_dir=tmp, agents=[agent], **extra)
        store = open_store(Path(tmp), clock=lambda: now[0])
        try:
            async with running_gateway(settings, plugins=[("capture", provider)], store=store) as gw:
                async with gw.client() as client:
                    for turn in turns:
                        said = turn if isinstance(turn, Said) else Said(turn)
                        if said.at is not None:
                            now[0] = said.at
                        else:
                            now[0] += dt.timedelta(minutes=1)
                        frames = await client.chat(params(said.content), timeout=timeout)
                        if any(f.get("event") == "error" for f in frames) or frames[-1].get("event") != "done":
                            raise RuntimeError(f"a conversation turn failed: {frames}")
                    session = make_session_key("default", channel, account, peer)
                    out.stored_messages = len(await store.history(session))
                    provider.asking = True
                    now[0] = asked_at or now[0] + dt.timedelta(minutes=1)
                    for question in questions:
                        before = len(provider.captured)
                        await client.chat(params(question), timeout=timeout)
                        if len(provider.captured) != before + 1:
                            raise RuntimeError(f"no request captured for {question!r}")
                        out.requests.append(provider.captured[-1])
                        out.contexts.append(request_text(provider.captured[-1]))
        finally:
            store.close()
    return out
