"""Semantic memory: facts learned from what a person says, retrieved when a message needs them (SPEC §9).

* **Learning** (``after_turn``): the user's message goes to the
  ``extract_facts`` decision hook — our offline extractor
  (:mod:`.extract`) answers last (``trylast``), so an LLM-based extractor
  registered by another plugin replaces it. Each fact is stored for the
  person (agent + channel + account): ``store.add_fact`` supersedes an older
  value of the same subject and predicate and keeps it. Set-valued
  predicates (likes, speaks, allergy …) carry their item in the stored
  predicate so that liking pizza does not supersede liking sushi
  (:func:`.vocab.storage_fact`).
* **Retrieval** (``assemble_context``): the new message becomes a word
  query with its question words mapped to predicates (:mod:`.retrieval`);
  the store ranks the person's facts with FTS5/bm25 (never a scan in
  Python); a fact of the very predicate asked about gets a small bonus; the
  best :attr:`SemanticPlugin.max_facts` become ``fact`` parts, their text a
  readable sentence ("the user's dog's name is Luna"), their relevance the
  score.
* **RPC** ``memory.list`` / ``memory.forget`` (``session``; ``id``): what is
  remembered about a person, and retiring a fact (superseded, history kept).
* **RPC** ``memory.search`` (``query``, optional ``session``,
  ``include_superseded``, ``limit``): the facts matching plain words, with
  their history fields. With ``session`` only that session's person;
  without it every person's (an owner's tool; each result says whose).

``[memory] extractor`` chooses how facts are learned: ``rules`` (the
offline extractor, per turn), ``llm`` (:mod:`.llm_extract`: batched, one
metered call per batch, after the lane), ``off``; by default ``llm`` for an
agent with a real provider and ``rules`` for the offline echo. With
``semantic_enabled = false`` nothing is extracted or retrieved.
"""

from __future__ import annotations

import asyncio

import logging
from dataclasses import replace
from typing import Any, Callable

from exoclaw_hooks import CompletedTurn, ContextPart, Fact, InvalidParams, hookimpl

from .extract import extract_facts as offline_extract
from .llm_extract import LLMExtractor
from .retrieval import analyze
from .settings import MemorySettings
from .vocab import base_predicate, render, storage_fact

log = logging.getLogger("exoclaw.memory")

SOURCE = "memory-semantic"
#: added to the bm25 score of a fact whose predicate the message asks about
ASKED_BONUS = 1.0
#: the facts section of the system prompt
HEADING = "What you remember about the person you are talking to:"
#: results of one memory.search at most
MAX_SEARCH_LIMIT = 1000


def person_of_session(session_key: str) -> str:
    """The person key (``agent:channel:account``) of a session key (``agent:channel:account:peer``).

    Each part is escaped (``:`` is ``%3A``), so splitting at ``:`` is exact.
    Raises ``ValueError`` when ``session_key`` does not have four parts.
    """
    parts = session_key.split(":")
    if len(parts) != 4 or not all(parts[:3]):
        raise ValueError(session_key)
    return ":".join(parts[:3])


def _person_or_none(session_key: str) -> str | None:
    try:
        return person_of_session(session_key)
    except ValueError:
        return None


def _person_param(params: dict[str, Any]) -> str:
    session = params.get("session")
    if session is None:
        raise InvalidParams("session", "required (the session key agent:channel:account:peer)")
    if not isinstance(session, str):
        raise InvalidParams("session", "must be a string")
    try:
        return person_of_session(session)
    except ValueError:
        raise InvalidParams("session", "must be a session key agent:channel:account:peer") from None


def _bool_param(params: dict[str, Any], name: str) -> bool:
    value = params.get(name, False)
    if not isinstance(value, bool):
        raise InvalidParams(name, "must be a boolean")
    return value


def fact_json(fact: Fact, person: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "subject": fact.subject,
        "predicate": fact.predicate,
        "object": fact.object,
        "learned_at": fact.learned_at,
        "confidence": fact.confidence,
        "superseded_at": fact.superseded_at,
        "superseded_by": fact.superseded_by,
        "id": fact.id,
        "text": render(fact),
    }
    if person is not None:
        out["person"] = person
    return out


class SemanticPlugin(MemorySettings):
    """``memory-semantic``: learns facts after each turn and brings back the relevant ones."""

    #: facts offered per turn at most (the core may drop the least relevant to fit ``context_tokens``)
    max_facts = 8

    def __init__(self) -> None:
        self.host: Any = None
        self.llm: LLMExtractor | None = None

    # -------------------------------------------------------------- start-up

    @hookimpl
    def register_methods(self, register: Callable[..., None], host: Any) -> None:
        self.host = self.host or host
        register("memory.search", self.memory_search)
        register("memory.list", self.memory_list)
        register("memory.forget", self.memory_forget)

    @hookimpl
    def gateway_startup(self, host: Any) -> None:
        self.host = host
        m = self.memory
        self.llm = LLMExtractor(host, batch_turns=m.llm_batch_turns, idle_s=m.llm_idle_s,
                                provider=m.llm_provider, model=m.llm_model, fallback=self.learn_offline)

    @hookimpl
    async def gateway_shutdown(self, host: Any) -> None:
        if self.llm is not None:  # what is queued is learned before the gateway goes
            await self.llm.drain()

    # -------------------------------------------------------------- retrieval

    @hookimpl
    async def assemble_context(self, request: Any) -> list[ContextPart] | None:
        if not self.memory.semantic_enabled:
            return None
        query, asked = analyze(request.message.content)
        if not query:
            return []
        # a few more than needed, so that a fact of the predicate asked about can move up
        hits = await request.store.search_facts(request.person_key, query, limit=2 * self.max_facts)
        ranked = sorted(
            ((score + (ASKED_BONUS if base_predicate(fact.predicate) in asked else 0.0), fact) for fact, score in hits),
            key=lambda h: -h[0],
        )
        return [
            ContextPart(kind="fact", text=f"- {render(fact)}", relevance=score, source=SOURCE, heading=HEADING)
            for score, fact in ranked[: self.max_facts]
        ]

    # -------------------------------------------------------------- learning

    @hookimpl
    async def after_turn(self, turn: CompletedTurn) -> None:
        if not turn.message.content.strip():
            return
        mode = self.memory.extractor_for(turn.agent)
        if mode == "llm" and self.llm is not None:
            await self.llm.add(turn)  # batched: one metered call per full batch
        elif mode != "off":
            await self.learn_offline(turn)

    async def learn_offline(self, turn: CompletedTurn) -> None:
        """Learn from one turn with the ``extract_facts`` hook (the rules extractor answers last)."""
        text = turn.message.content
        if not text or not text.strip():
            return
        store = turn.store
        known = await store.list_facts(turn.person_key)
        facts = await self._extract(text, turn.message, known)
        stored = 0
        for fact in facts:
            if not isinstance(fact, Fact):
                log.warning("event=fact_ignored reason=%s", f"extract_facts returned a {type(fact).__name__}")
                continue
            fact = replace(storage_fact(fact), source_session=turn.route.session_key)
            try:
                await store.add_fact(turn.person_key, fact)
                stored += 1
            except ValueError as exc:  # an empty subject, predicate or object
                log.warning("event=fact_ignored reason=%s", str(exc))
        if stored:
            log.info("event=facts_learned count=%d", stored)

    async def _extract(self, text: str, message: Any, known: list[Fact]) -> list[Any]:
        """Ask the ``extract_facts`` hook (ours answers last); our own extractor if there is no host or it failed."""
        if self.host is None:
            return offline_extract(text, known)
        try:
            facts = await self.host.hooks.first("extract_facts", text=text, message=message, known=known)
        except Exception as exc:  # noqa: BLE001 - a broken extractor plugin must not cost the facts
            log.warning("event=extractor_failed error=%s (using the offline extractor)", " ".join(str(exc).split()))
            return offline_extract(text, known)
        if facts is None:
            return []
        if isinstance(facts, Fact):
            return [facts]
        try:
            return list(facts)
        except TypeError:
            log.warning("event=extractor_failed error=%s", f"extract_facts returned a {type(facts).__name__}")
            return []

    @hookimpl(trylast=True)
    def extract_facts(self, text: str, message: Any, known: Any) -> list[Fact]:
        """The default, offline extractor (a decision hook: a plain function).

        A long message is worked on in a thread (tens of ms for a MiB of
        text) so the event loop stays free; a short one is cheaper inline.
        """
        if len(text) > 4096:
            return asyncio.to_thread(offline_extract, text, list(known or ()))  # type: ignore[return-value]
        return offline_extract(text, list(known or ()))

    # -------------------------------------------------------------- memory.search

    async def memory_list(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """RPC ``memory.list``: what is remembered about the person of ``session`` (newest first).

        ``include_superseded`` adds the history (facts replaced or forgotten).
        """
        person = _person_param(params)
        include = _bool_param(params, "include_superseded")
        return [fact_json(f, person) for f in await self.host.store.list_facts(person, include_superseded=include)]

    async def memory_forget(self, params: dict[str, Any]) -> dict[str, Any]:
        """RPC ``memory.forget``: the person retires a fact (``id``); it is superseded, its history kept."""
        person = _person_param(params)
        fact_id = params.get("id")
        if isinstance(fact_id, bool) or not isinstance(fact_id, int):
            raise InvalidParams("id", "must be the integer id of a fact (memory.list shows them)")
        retired = await self.host.store.retire_fact(person, fact_id)
        if retired is None:
            raise InvalidParams("id", f"no remembered fact {fact_id} for this person")
        log.info("event=fact_forgotten id=%d", fact_id)
        return fact_json(retired, person)

    async def memory_search(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        query = params.get("query")
        if query is None:
            raise InvalidParams("query", "required")
        if not isinstance(query, str):
            raise InvalidParams("query", "must be a string")
        include = _bool_param(params, "include_superseded")
        limit = params.get("limit", 100)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_SEARCH_LIMIT:
            raise InvalidParams("limit", f"must be an integer from 1 to {MAX_SEARCH_LIMIT}")
        person = _person_param(params) if params.get("session") is not None else None
        # without a session: everyone's facts, in one ranked query (the owner's search)
        hits = await self.host.store.search_facts(person, query, limit=limit, include_superseded=include)
        return [
            fact_json(f, person or _person_or_none(f.source_session or "")) for f, _score in hits
        ]
