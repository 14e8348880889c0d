"""Assembling a turn's context from the memory layers' parts (SPEC §9).

The context is exactly: the soul (then the agent's system prompt), the
facts relevant to the new message, the last turns of the window, and the
new message. Soul and facts go into the system prompt; the turns and the
new message are the messages. ``[memory] context_tokens`` is an upper
bound: the least relevant facts are dropped first, then the oldest turns
(whole turns: a tool result never loses its call); never the soul, the
system prompt or the new message — if those alone exceed the bound they
are still sent, with nothing else.

Tokens are estimated (characters / 4, the same rule everywhere), unless a
part says how many it has.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable

from exoclaw_hooks import AgentConfig, ContextPart, IncomingMessage, Message, Turn

CHARS_PER_TOKEN = 4


def estimate_tokens(text: str) -> int:
    """A deliberately simple estimate (characters / 4, rounded up)."""
    return -(-len(text) // CHARS_PER_TOKEN)


def _json_len(value: Any) -> int:
    try:
        return len(json.dumps(value, ensure_ascii=False, default=str))
    except (TypeError, ValueError):
        return len(str(value))


def turn_chars(turn: Turn) -> int:
    """The characters of a turn as the model sees them: texts, tool calls (name + JSON input), results."""
    n = 0
    for m in turn.messages:
        n += len(m.content)
        for c in m.tool_calls:
            n += len(c.name) + _json_len(dict(c.input))
        for r in m.tool_results:
            n += len(r.content)
    return n


def _part_tokens(part: ContextPart) -> int:
    if part.tokens:
        return part.tokens
    if part.kind == "turn" and part.turn is not None:
        return -(-turn_chars(part.turn) // CHARS_PER_TOKEN)
    if part.kind == "fact":
        return estimate_tokens(f"- {part.text}\n")  # as it is written in the system prompt
    return estimate_tokens(part.text)


@dataclass(frozen=True)
class Context:
    system: str
    messages: tuple[Message, ...]
    tokens: int
    facts: int
    turns: int
    dropped_facts: int
    dropped_turns: int


FACTS_HEADER = "What you remember about the person you are talking to:"


def build_context(
    agent: AgentConfig,
    message: IncomingMessage,
    parts: Iterable[ContextPart],
    context_tokens: int,
) -> Context:
    """Order and trim the memory layers' ``parts`` into the system prompt and messages of the first LLM call.

    Anything that is not a :class:`ContextPart` of a known kind is ignored
    (a buggy plugin must not break the turn). Facts with the same text are
    kept once (the most relevant), and so are turns with the same ``seq``.
    """
    souls: list[ContextPart] = []
    facts: list[ContextPart] = []
    turns: list[ContextPart] = []
    for p in parts:
        if not isinstance(p, ContextPart):
            continue
        if p.kind == "soul" and p.text:
            souls.append(p)
        elif p.kind == "fact" and p.text:
            facts.append(p)
        elif p.kind == "turn" and p.turn is not None and p.turn.messages:
            turns.append(p)
    facts.sort(key=lambda p: -p.relevance)  # stable: equal relevance keeps the plugin's order
    texts: set[str] = set()
    facts = [f for f in facts if not (f.text in texts or texts.add(f.text))]  # type: ignore[func-returns-value]
    turns.sort(key=lambda p: p.turn.seq)  # type: ignore[union-attr]
    # two layers may offer the same turn; keep one
    seen: set[int] = set()
    unique: list[ContextPart] = []
    for t in turns:
        if t.turn.seq not in seen:  # type: ignore[union-attr]
            seen.add(t.turn.seq)  # type: ignore[union-attr]
            unique.append(t)
    turns = unique

    fixed = (
        estimate_tokens(agent.system_prompt)
        + sum(_part_tokens(s) for s in souls)
        + estimate_tokens(message.content)
        + estimate_tokens(message.system_extra or "")
    )
    fact_tokens = [_part_tokens(f) for f in facts]
    turn_tokens = [_part_tokens(t) for t in turns]
    header = estimate_tokens(FACTS_HEADER) if facts else 0
    total = fixed + header + sum(fact_tokens) + sum(turn_tokens)

    dropped_facts = dropped_turns = 0
    while total > context_tokens and facts:
        facts.pop()  # least relevant last
        total -= fact_tokens.pop()
        dropped_facts += 1
        if not facts:
            total -= header
    while total > context_tokens and turns:
        turns.pop(0)  # oldest first
        total -= turn_tokens.pop(0)
        dropped_turns += 1

    sections = [s.text for s in souls]
    if agent.system_prompt:
        sections.append(agent.system_prompt)
    if facts:
        sections.append(FACTS_HEADER + "\n" + "\n".join(f"- {f.text}" for f in facts))
    if message.system_extra:
        sections.append(message.system_extra)
    messages: list[Message] = []
    for t in turns:
        messages.extend(t.turn.messages)  # type: ignore[union-attr]
    messages.append(Message(role="user", content=message.content))
    return Context(
        system="\n\n".join(sections),
        messages=tuple(messages),
        tokens=total,
        facts=len(facts),
        turns=len(turns),
        dropped_facts=dropped_facts,
        dropped_turns=dropped_turns,
    )
