"""Facts learned by an LLM: batched after the turns, metered, adding and superseding, never deleting (SPEC §9).

``[memory] extractor = "llm"``: the semantic plugin hands each committed
turn to :class:`LLMExtractor` (after ``done``, outside the session's lane).
Turns are batched per person and sent as ONE call when ``llm_batch_turns``
have gathered or the person has been quiet for ``llm_idle_s`` seconds. The
call goes through ``host.llm(kind="memory")``: budgets may refuse it and
metering records it like any other call.

What the model is shown: only what the *person* said (never the assistant's
replies, never recalled memory, which is not part of a stored user
message), each line with its time so that "yesterday" becomes a date, and
the facts already known with their ids, so that it can say which one a new
fact replaces. What it may do: add facts, and name the known fact each new
fact supersedes. There is no delete: the store keeps history, and a new
value for the same subject and predicate supersedes the old one.

The answer must be JSON (a code fence around it is tolerated)::

    {"facts": [{"subject": "user", "predicate": "lives_in", "object": "Berlin",
                "supersedes": 12, "turns": [1]}]}

Anything else — prose, broken JSON, wrong types — is logged and nothing is
stored from it. A call that fails or is refused is logged; that batch is
learned by the offline rules instead, so nothing said is simply dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass, field, replace
from typing import Any, Awaitable, Callable

from exoclaw_hooks import CompletedTurn, Fact, LLMRequest, Message

from .vocab import PREDICATES, render, storage_fact

log = logging.getLogger("exoclaw.memory")

#: the most known facts shown to the model (the most recent first)
MAX_KNOWN = 60
#: a message longer than this is cut in the prompt (the model sees the start)
MAX_MESSAGE_CHARS = 2000
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)

SYSTEM = """You maintain the long-term memory of an assistant about the person it talks to.
From the person's messages below, extract durable facts about them and the people, pets, places
and things in their life: names, relationships, where they live or work, preferences, plans with
dates, events that happened. Rules:
- Only what the PERSON said about themselves or their world. Nothing from the assistant.
- Do not invent. Skip small talk, questions, hypotheticals and anything uncertain.
- Keep the person's own language for objects (do not translate names or terms).
- Dates: every message has its time; turn relative dates ("yesterday", "next Friday",
  "last year") into absolute ones (2023-05-07, 2024) using that time.
- subject is "user" for the person, or a chain from them: "user's sister", "user's dog".
- predicate is a short snake_case relation; prefer these when they fit: {predicates}.
- If a new fact replaces a known one (they moved, changed jobs, corrected themselves), give the
  known fact's id in "supersedes". Never repeat a known fact unchanged. Never delete anything.
- "turns" lists the numbers of the messages the fact comes from.
Answer with JSON only: {{"facts": [{{"subject": ..., "predicate": ..., "object": ...,
"supersedes": <id or null>, "turns": [<n>, ...]}}]}}. No facts: {{"facts": []}}."""


@dataclass
class Pending:
    """A person's turns waiting to be learned from."""

    turns: list[CompletedTurn] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


@dataclass(frozen=True)
class Extracted:
    fact: Fact
    supersedes: int | None
    turns: tuple[int, ...]


def build_request(turns: list[CompletedTurn], known: list[Fact], model: str) -> LLMRequest:
    """The one call that learns from ``turns`` (numbered from 1), knowing ``known``."""
    lines = []
    for n, turn in enumerate(turns, 1):
        when = turn.turn.created_at or ""
        text = turn.message.content
        if len(text) > MAX_MESSAGE_CHARS:
            text = text[:MAX_MESSAGE_CHARS] + " […]"
        lines.append(f"[{n}] ({when}) {json.dumps(text, ensure_ascii=False)}")
    facts = [f"#{f.id}: {render(f)} ({f.subject} / {f.predicate} / {f.object})" for f in known[:MAX_KNOWN]]
    user = (
        "Known facts:\n" + ("\n".join(facts) if facts else "(none)")
        + "\n\nThe person's messages (number, time, text as a JSON string):\n" + "\n".join(lines)
    )
    system = SYSTEM.format(predicates=", ".join(sorted(p for p in PREDICATES)))
    return LLMRequest(model=model, system=system, messages=(Message("user", user),), max_tokens=1024)


def parse_reply(text: str, known_ids: set[int], n_turns: int) -> list[Extracted]:
    """The facts in the model's answer; :class:`ValueError` (with why) when it is not the JSON asked for."""
    fenced = _FENCE.search(text)
    body = fenced.group(1) if fenced else text
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end <= start:
        raise ValueError("no JSON object in the answer")
    try:
        data = json.loads(body[start:end + 1])
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    items = data.get("facts") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ValueError('no "facts" list')
    out: list[Extracted] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        parts = [item.get(k) for k in ("subject", "predicate", "object")]
        if not all(isinstance(p, str) and p.strip() for p in parts):
            continue
        subject, predicate, obj = (p.strip()[:200] for p in parts)  # type: ignore[union-attr]
        predicate = "_".join(predicate.lower().split())
        supersedes = item.get("supersedes")
        if not (isinstance(supersedes, int) and not isinstance(supersedes, bool) and supersedes in known_ids):
            supersedes = None
        turns = tuple(t for t in item.get("turns") or () if isinstance(t, int) and 1 <= t <= n_turns)
        out.append(Extracted(Fact(subject, predicate, obj, confidence=0.9), supersedes, turns))
    return out


class LLMExtractor:
    """Batches each person's turns and learns from them with one metered call per batch.

    :param fallback: ``fallback(turn)`` learns one turn offline (used when the call fails).
    """

    def __init__(
        self,
        host: Any,
        *,
        batch_turns: int = 5,
        idle_s: float = 30.0,
        provider: str | None = None,
        model: str | None = None,
        fallback: Callable[[CompletedTurn], Awaitable[None]],
    ):
        self.host = host
        self.batch_turns, self.idle_s = batch_turns, idle_s
        self.provider, self.model = provider, model
        self.fallback = fallback
        self._pending: dict[str, Pending] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    async def add(self, turn: CompletedTurn) -> None:
        """Queue a committed turn; a full batch is learned now (the caller is already outside the
        session's lane), a smaller one after ``idle_s`` of quiet."""
        pending = self._pending.setdefault(turn.person_key, Pending())
        pending.turns.append(turn)
        if pending.timer is not None:
            pending.timer.cancel()
            pending.timer = None
        if len(pending.turns) >= self.batch_turns:
            del self._pending[turn.person_key]
            await self.learn(turn.person_key, pending.turns)
        else:
            loop = asyncio.get_running_loop()
            pending.timer = loop.call_later(self.idle_s, self._flush, turn.person_key)

    def _flush(self, person_key: str) -> None:
        pending = self._pending.pop(person_key, None)
        if pending is None or not pending.turns:
            return
        if pending.timer is not None:
            pending.timer.cancel()
        task = asyncio.get_running_loop().create_task(self.learn(person_key, pending.turns))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Learn from everything queued now (shutdown, tests)."""
        for person in list(self._pending):
            self._flush(person)
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def learn(self, person_key: str, turns: list[CompletedTurn]) -> int:
        """One call for ``turns``; the number of facts stored."""
        last = turns[-1]
        store = last.store
        known = await store.list_facts(person_key)
        known.sort(key=lambda f: f.learned_at, reverse=True)
        request = build_request(turns, known, self.model or last.agent.model)
        try:
            reply = await self.host.llm(
                request, agent=last.agent, route=last.route, kind="memory", provider=self.provider, model=self.model,
            )
        except Exception as exc:  # noqa: BLE001 - refused, failed: the turns are learned offline instead
            log.warning("event=extractor_failed extractor=llm turns=%d error=%s (learning them offline)",
                        len(turns), json.dumps(" ".join(str(exc).split()), ensure_ascii=False))
            for turn in turns:
                await self.fallback(turn)
            return 0
        try:
            found = parse_reply(reply.text, {f.id for f in known if f.id is not None}, len(turns))
        except ValueError as exc:
            log.warning("event=extractor_garbage extractor=llm turns=%d reason=%s chars=%d",
                        len(turns), json.dumps(str(exc)), len(reply.text))
            return 0
        stored = 0
        for item in found:
            source = turns[item.turns[0] - 1] if item.turns else last
            fact = storage_fact(replace(item.fact, learned_at=source.turn.created_at or "",
                                        source_session=source.route.session_key))
            try:
                new = await store.add_fact(person_key, fact)
            except ValueError as exc:
                log.warning("event=fact_ignored reason=%s", json.dumps(str(exc)))
                continue
            stored += 1
            if item.supersedes is not None and item.supersedes != new.id:
                # the model says this replaces a fact of another subject or predicate: mark it, keep it
                await store.retire_fact(person_key, item.supersedes, superseded_by=new.id)
        log.info("event=facts_learned extractor=llm turns=%d found=%d stored=%d", len(turns), len(found), stored)
        return stored
