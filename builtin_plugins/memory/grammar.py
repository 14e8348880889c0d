"""The machinery of the verb-phrase rules: normalising a verb phrase, registering and applying rules.

:func:`verb_phrase_facts` gets the subject (a possessive chain from the
speaker: ``[]`` is the speaker, ``["dog"]`` their dog) and the rest of the
clause, normalises its verb with :func:`normalize_vp` (``I'm`` / ``is`` →
``be``, ``lives`` → ``live``, ``have been living`` → ``live`` …) and tries
the rules in the order they were registered (:mod:`.rules_personal`, then
:mod:`.rules_work`); the first that gives facts wins.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Callable

from exoclaw_hooks import Fact

from .text import QUALIFIER_TAIL
from .vocab import LANGUAGES, subject_of

CI = re.IGNORECASE
EXPLICIT = 0.9
INFERRED = 0.6

_ADVERBS = re.compile(
    r"^(?:also|currently|now|still|actually|really|truly|just|recently|basically|totally|absolutely|honestly|"
    r"definitely|genuinely|mostly|usually|do|does|did|kinda|kind of|sort of|literally|seriously|originally|"
    r"happily|proudly|finally|already|even|always|mainly|primarily|officially|technically|only|both|all|"
    r"part[- ]time|full[- ]time|together|permanently|temporarily)\s+",
    CI,
)
_PROGRESSIVE = re.compile(
    r"^be\s+(?=(?:living|working|learning|studying|staying|residing|teaching|training|dating|moving|going|"
    r"planning|thinking|trying|taking|doing|raising|suffering|struggling|majoring|speaking)\b)",
    CI,
)
_LEMMA = {
    "lives": "live", "living": "live", "resides": "reside", "residing": "reside", "stays": "stay",
    "staying": "stay", "works": "work", "working": "work", "worked": "work", "speaks": "speak",
    "speaking": "speak", "loves": "love", "likes": "like", "enjoys": "enjoy", "adores": "adore",
    "hates": "hate", "dislikes": "dislike", "detests": "detest", "prefers": "prefer", "has": "have",
    "owns": "own", "drives": "drive", "studies": "study", "studying": "study", "learns": "learn",
    "learning": "learn", "learnt": "learn", "grew": "grow", "comes": "come", "came": "come",
    "suffers": "suffer", "suffering": "suffer", "goes": "go", "relocated": "moved", "teaches": "teach",
    "teaching": "teach", "majoring": "major", "majors": "major", "struggles": "struggle",
    "struggling": "struggle", "taking": "take", "takes": "take", "doing": "do", "calls": "call",
    "raising": "raise",
}
_PARTICIPLE = (
    r"moved|lived|worked|studied|learned|learnt|grown|taught|adopted|bought|started|become|relocated|"
    r"been diagnosed|suffered|spoken|loved|liked|hated|owned|always"
)


_VP_TAIL = re.compile(
    r"(?:[\s,]+(?:now|too|as well|also|these days|nowadays|at the moment|right now|currently|lol|haha+|btw|"
    r"though|actually|really|anyway|already|btw|for now|for real|:\)|:D|!+))+[\s.!]*$",
    CI,
)


_TRYING = re.compile(
    r"^(?:be\s+)?(?:trying|try|tries|starting|started|beginning|began|begun)\s+to\s+(?=learn\b|speak\b)", CI
)


def normalize_vp(vp: str) -> str:
    """``am currently living in X`` → ``live in X``; ``'ve been a nurse`` → ``be a nurse``."""
    v = QUALIFIER_TAIL.sub("", " ".join(vp.split()))
    for _ in range(6):
        before = v
        v = _ADVERBS.sub("", v)
        v = re.sub(r"^(?:am|is|are|'m|'s|'re)\s+", "be ", v, flags=CI)
        v = re.sub(r"^(?:was|were|be|am|is)\s+(?=born\b)", "", v, flags=CI)
        v = re.sub(r"^(?:have|has|'ve)\s+been\s+(?=\w+ing\b)", "", v, flags=CI)
        v = re.sub(r"^(?:have|has|'ve)\s+been\s+", "be ", v, flags=CI)
        v = re.sub(r"^(?:have|has|'ve)\s+(?:got|gotten)\s+", "have ", v, flags=CI)
        v = re.sub(r"^(?:have|has|'ve)\s+(?:lived|resided)\b", "live", v, flags=CI)  # still does
        v = re.sub(r"^(?:have|has|'ve)\s+worked\b", "work", v, flags=CI)
        v = re.sub(rf"^(?:have|has|'ve)\s+(?={_PARTICIPLE})", "", v, flags=CI)
        v = re.sub(r"^'ve\s+", "have ", v, flags=CI)
        if v.lower().startswith("be "):
            v = "be " + _ADVERBS.sub("", v[3:])
        v = _PROGRESSIVE.sub("", v)
        v = _TRYING.sub("", v)
        if v == before:
            break
    v = _VP_TAIL.sub("", v)
    v = re.sub(r"\s+(?:part|full)[- ]time\b", "", v, flags=CI)  # "work part-time as a pharmacist"
    head, _, rest = v.partition(" ")
    lemma = _LEMMA.get(head.lower())
    if lemma:
        v = f"{lemma} {rest}".strip()
    return v


# ---------------------------------------------------------------- the rules

Rule = Callable[["re.Match[str]", list[str], float], list[Fact]]
_RULES: list[tuple[re.Pattern[str], Rule]] = []


def rule(pattern: str, flags: int = CI) -> Callable[[Rule], Rule]:
    compiled = re.compile(pattern, flags)

    def add(fn: Rule) -> Rule:
        _RULES.append((compiled, fn))
        return fn

    return add


#: predicates whose value is a proper name: "berlin" typed in lower case is stored "Berlin"
_PROPER = frozenset(
    "lives_in from born_in grew_up_in moved_from hometown works_at studies_at location nationality".split()
)
_LANGUAGE_VALUED = frozenset({"speaks", "learning", "native_language"})


def _capitalised(predicate: str, obj: str) -> str:
    if not obj.islower():
        return obj
    common = re.match(r"^(?:a|an|the|my|our|near|outside|close)\b", obj)
    if predicate in _PROPER and len(obj.split()) <= 4 and not common:
        return " ".join(w if w in ("of", "and", "de", "la", "upon") else w.capitalize() for w in obj.split())
    if predicate in _LANGUAGE_VALUED and obj.split()[0] in LANGUAGES:
        return obj[:1].upper() + obj[1:]
    return obj


#: predicates whose value must be a named place: "near the beach", "the future" are not places
_PLACES = frozenset("lives_in from born_in grew_up_in moved_from hometown location".split())
_NAMED_PLACE = re.compile(r"^(?:(?:near|outside|outside of|close to|just outside)\s+)?(?:the\s+)?[A-Z0-9]")


#: a value that points back into the conversation is not a value: "my hand-painted bowl", "connection it
#: brings", "sources of inspiration that keep us going" (rendered about someone else, it would be wrong)
_DEICTIC = re.compile(
    r"\b(?:i|me|my|mine|myself|we|us|our|ours|ourselves|you|your|yours|it|its|they|them|their|this|that|"
    r"these|those|here|there)\b",
    CI,
)
#: how a value that is only part of a thought starts: "both classical", "especially …", "to", "with them"
_FRAGMENT_START = re.compile(
    r"^(?:both|especially|all|just|really|also|even|mostly|very|so|too|more|most|some|any|to|with|about|for|"
    r"from|by|as|of|and|or|but|than|like|such|lots?|a lot|a ton|tons|a bit|a little|stuff|things|beyond|"
    r"doing|being|getting|going)\b",
    CI,
)
#: predicates whose value is free text by nature (an address, an e-mail …)
_FREE_TEXT = frozenset("address email phone".split())


def _plain_value(obj: str) -> bool:
    """Whether ``obj`` can stand as a fact's value on its own (no pointer into the talk, not a fragment)."""
    return not (_DEICTIC.search(obj) or _FRAGMENT_START.match(obj)) and bool(re.search(r"[^\W\d_]{2,}|\d", obj))


def fact(chain: list[str], predicate: str, obj: str | None, confidence: float) -> list[Fact]:
    """One fact about ``subject_of(chain)`` as a list (empty when there is no value)."""
    if not obj:
        return []
    obj = _capitalised(predicate, obj)
    if predicate in _PLACES and not _NAMED_PLACE.match(obj):
        return []
    if predicate not in _FREE_TEXT and not _plain_value(obj):
        return []
    return [Fact(subject=subject_of(chain), predicate=predicate, object=obj, confidence=confidence)]


def many(chain: list[str], predicate: str, values: list[str], confidence: float) -> list[Fact]:
    return [f for v in values for f in fact(chain, predicate, v, confidence)]


#: the modules whose rules are tried, in this order (within one, in file order)
RULE_MODULES = ("rules_personal", "rules_work")


@lru_cache(maxsize=1)
def _ordered() -> tuple[tuple[re.Pattern[str], Rule], ...]:
    import importlib

    for name in RULE_MODULES:
        importlib.import_module(f"{__package__}.{name}")
    rank = {f"{__package__}.{name}": i for i, name in enumerate(RULE_MODULES)}
    return tuple(sorted(_RULES, key=lambda r: rank.get(r[1].__module__, len(rank))))  # stable


def verb_phrase_facts(chain: list[str], vp: str, confidence: float) -> list[Fact]:
    """Facts about ``subject_of(chain)`` from a verb phrase (the first rule that gives any)."""
    v = normalize_vp(vp)
    for pattern, fn in _ordered():
        m = pattern.match(v)
        if m:
            found = fn(m, chain, confidence)
            if found:
                return found
    return []
