"""Packing a turn's context into ONE budget (SPEC §9).

The memory plugins contribute ranked, sized parts; this module knows
sections, ranks and a token budget — not what a fact or a memory is:

* ``soul`` parts, the agent's system prompt, the turn's extra system text and
  the new message are always sent (they are counted first);
* ``turn`` parts are the *window*: past exchanges sent as messages, whole
  (a tool result never loses its call), the newest kept first;
* every other kind is a *section* of the system prompt, under its parts'
  ``heading``: facts, recalled conversation, or a kind a plugin invents.
  Within a section the most relevant parts are taken first (then shown in
  their ``order``); a part that does not fit is skipped for a smaller one.

What the fixed parts leave of ``ContextPolicy.tokens`` is shared by the
sections and the window by ``ContextPolicy.shares`` (``"turn"`` is the
window; ``"*"`` is the share of a kind not named); a section's unused share
flows to the others. Tokens are estimated with the one estimator of
``exoclaw_hooks`` unless a part says how many it has. The composition
(tokens per section) is reported with the turn.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from exoclaw_hooks import AgentConfig, ContextPart, IncomingMessage, Message, Turn, count_chars, estimate_tokens
from exoclaw_hooks._tokens import CHARS_PER_TOKEN

#: a kind with no share of its own gets this share of the budget, unless ``shares["*"]`` says otherwise
DEFAULT_SHARE = 0.1
WINDOW, SOUL = "turn", "soul"


def _json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def turn_text(turn: Turn) -> str:
    """A turn as the model sees it, for counting: texts, tool calls (name + JSON input), results."""
    parts: list[str] = []
    for m in turn.messages:
        parts.append(m.content)
        parts.extend(c.name + _json(dict(c.input)) for c in m.tool_calls)
        parts.extend(r.content for r in m.tool_results)
    return "".join(parts)


def part_tokens(part: ContextPart) -> int:
    """What a part costs at most (its label shown)."""
    if part.tokens:
        return part.tokens
    if part.kind == WINDOW and part.turn is not None:
        return estimate_tokens(turn_text(part.turn))
    return estimate_tokens(_line(part, shown=True)) + 1  # its own line


def _line(part: ContextPart, shown: bool) -> str:
    return f"{part.label} {part.text}" if part.label and shown else part.text


@dataclass(frozen=True)
class Context:
    system: str
    messages: tuple[Message, ...]
    #: estimated tokens of everything sent
    tokens: int
    #: tokens by section: soul, system, window, message, and each section's kind
    composition: Mapping[str, int] = field(default_factory=dict)
    #: parts offered but left out, by kind
    dropped: Mapping[str, int] = field(default_factory=dict)


@dataclass
class _Section:
    kind: str
    share: float
    heading: str
    candidates: list[ContextPart]
    costs: list[int]
    chosen: list[int] = field(default_factory=list)
    #: each candidate's (latin, dense) characters: its text, and its label with the space after it
    sizes: list[tuple[int, int, int, int]] = field(default_factory=list)
    used: int = 0
    allowance: float = 0.0
    next: int = 0  # the window takes its candidates in order and stops at the first that does not fit

    def fill(self, budget_left: float) -> None:
        """Take what fits in the allowance (and in what the whole budget has left)."""
        head = 0 if self.chosen or not self.heading else estimate_tokens(self.heading) + 1
        taken = set(self.chosen)
        for i, cost in enumerate(self.costs):
            if i in taken or (self.kind == WINDOW and i < self.next):
                continue
            extra = cost + head
            if self.used + extra <= self.allowance and extra <= budget_left:
                self.chosen.append(i)
                self.used += extra
                budget_left -= extra
                head = 0
                self.next = i + 1
            elif self.kind == WINDOW:
                break  # whole turns, newest first: a gap would make the window lie

    def render(self) -> str:
        """The section as shown: its heading, then the chosen parts in their order, a label repeated
        from the line before left out."""
        lines, previous = [], None
        for part in sorted((self.candidates[i] for i in self.chosen), key=lambda p: p.order):
            lines.append(_line(part, shown=part.label != previous))
            previous = part.label
        body = "\n".join(lines)
        return f"{self.heading}\n{body}" if self.heading else body

    def settle(self) -> None:
        """Count what the chosen parts really take, shown (labels left out cost nothing)."""
        if self.kind == WINDOW or not self.chosen:
            return
        if any(self.candidates[i].tokens for i in self.chosen):
            return  # a part that says its own size is taken at its word
        # estimate_tokens(self.render()), from each part's character counts (counts add up over a
        # concatenation) instead of building the text at every round of the packing
        if not self.sizes:
            self.sizes = [(*count_chars(p.text), *count_chars(f"{p.label} ")) if p.label else (*count_chars(p.text), 0, 0)
                          for p in self.candidates]
        latin, dense = count_chars(f"{self.heading}\n") if self.heading else (0, 0)
        latin += len(self.chosen) - 1  # the newlines between the lines
        previous = None
        for i in sorted(self.chosen, key=lambda i: self.candidates[i].order):
            label = self.candidates[i].label
            text_latin, text_dense, label_latin, label_dense = self.sizes[i]
            latin += text_latin
            dense += text_dense
            if label and label != previous:
                latin += label_latin
                dense += label_dense
            previous = label
        self.used = dense + int(-(-latin // CHARS_PER_TOKEN)) + len(self.chosen)

    @property
    def waiting(self) -> bool:
        """Candidates left that could still be taken."""
        if self.kind == WINDOW:
            return self.next < len(self.candidates)
        return len(self.chosen) < len(self.candidates)


def _dedupe(parts: Iterable[ContextPart]) -> list[ContextPart]:
    seen: set[Any] = set()
    out: list[ContextPart] = []
    for p in parts:
        key = ("turn", p.turn.seq) if p.kind == WINDOW and p.turn is not None else (p.kind, p.text)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def build_context(
    agent: AgentConfig,
    message: IncomingMessage,
    parts: Iterable[ContextPart],
    context_tokens: int,
    shares: Mapping[str, float] | None = None,
) -> Context:
    """Pack the memory layers' ``parts`` into the system prompt and messages of the first LLM call.

    Anything that is not a :class:`ContextPart`, or has nothing in it, is
    ignored (a buggy plugin must not break the turn). A part already offered
    (same kind and text, or the same turn) is taken once, at its best rank.
    """
    shares = shares or {}
    valid = [
        p for p in parts
        if isinstance(p, ContextPart) and ((p.kind == WINDOW and p.turn is not None and p.turn.messages)
                                            or (p.kind != WINDOW and p.text))
    ]
    valid.sort(key=lambda p: -p.relevance)  # stable: equal relevance keeps the plugins' order
    valid = _dedupe(valid)
    souls = [p for p in valid if p.kind == SOUL]
    fixed = {
        "soul": sum(part_tokens(s) for s in souls),
        "system": estimate_tokens(agent.system_prompt) + estimate_tokens(message.system_extra or ""),
        "message": estimate_tokens(message.content),
    }
    sections: dict[str, _Section] = {}
    for p in valid:
        if p.kind == SOUL:
            continue
        section = sections.get(p.kind)
        if section is None:
            share = shares.get(p.kind, shares.get("*", DEFAULT_SHARE))
            section = sections[p.kind] = _Section(p.kind, max(0.0, float(share)), "", [], [])
        if not section.heading and p.heading:
            section.heading = p.heading
        section.candidates.append(p)
    window = sections.get(WINDOW)
    if window is not None:  # newest first
        window.candidates.sort(key=lambda p: -p.turn.seq)  # type: ignore[union-attr]
    for s in sections.values():
        s.costs = [part_tokens(p) for p in s.candidates]

    available = max(0, context_tokens - sum(fixed.values()))
    total_share = sum(s.share for s in sections.values()) or 1.0
    for s in sections.values():
        s.allowance = available * s.share / total_share
    left = float(available)
    for s in sorted(sections.values(), key=lambda s: -s.share):
        s.fill(left)
        s.settle()
        left = available - sum(x.used for x in sections.values())
    # unused shares (and what labels left out saved) flow to the sections that still have parts
    # waiting, biggest share first
    while left > 0:
        hungry = [s for s in sorted(sections.values(), key=lambda s: -s.share) if s.waiting]
        before = left
        for s in hungry:
            s.allowance = s.used + left
            s.fill(left)
            s.settle()
            left = available - sum(x.used for x in sections.values())
        if left >= before:
            break

    system = [s.text for s in souls]
    if agent.system_prompt:
        system.append(agent.system_prompt)
    for s in sorted(sections.values(), key=lambda s: (-s.share, s.kind)):
        if s.kind != WINDOW and s.chosen:
            system.append(s.render())
    if message.system_extra:
        system.append(message.system_extra)
    messages: list[Message] = []
    if window is not None:
        for p in sorted((window.candidates[i] for i in window.chosen), key=lambda p: p.turn.seq):  # type: ignore
            messages.extend(p.turn.messages)  # type: ignore[union-attr]
    messages.append(Message(role="user", content=message.content))
    composition = dict(fixed)
    for s in sections.values():
        composition["window" if s.kind == WINDOW else s.kind] = s.used
    return Context(
        system="\n\n".join(system),
        messages=tuple(messages),
        tokens=sum(composition.values()),
        composition=composition,
        dropped={s.kind: len(s.candidates) - len(s.chosen) for s in sections.values() if len(s.chosen) < len(s.candidates)},
    )
