"""Cleaning what a rule captured: trailing chatter off a value, names, lists, plurals."""

from __future__ import annotations

import re

CI = re.IGNORECASE

_TRAILERS = re.compile(
    r"(?:[\s,]+(?:now|currently|these days|nowadays|at the moment|right now|too|as well|also|though|anymore|"
    r"already|lol|haha+|hehe|btw|by the way|actually|really|originally|recently|lately|since \w+(?: \d+)?|"
    r"for (?:\d+|a few|many|several|some|a couple of|two|three|four|five|ten|a) \w+|"
    r"last (?:year|month|week|summer|winter|spring|fall|autumn)|this (?:year|month|week)|"
    r"(?:a|one|two|three|four|five|six|\d+|a few|a couple of|couple of|few) (?:\w+ )?"
    r"(?:days?|weeks?|months?|years?) ago|"
    r"ago|in (?:19|20)\d\d)|\s*[:;]-?[()DP]|[\s.,!;:…]+)$",
    CI,
)
#: a time after a value: "Berlin in March", "Rome last summer", "Oslo until June", "Paris on Monday"
_MONTHS = r"january|february|march|april|may|june|july|august|september|october|november|december"
_DAYS = r"monday|tuesday|wednesday|thursday|friday|saturday|sunday|weekend|weekends"
_SEASONS = r"spring|summer|autumn|fall|winter|holidays?|christmas|easter|new year"
_WHEN = re.compile(
    rf"\s+(?:(?:in|on|since|until|till|through|during|by|from|before|after|around|over|for|every|each|"
    rf"last|this|next|early|late|mid)\s+)+(?:(?:early|late|mid|the)[\s-]+)*(?:{_MONTHS}|{_DAYS}|{_SEASONS}|"
    rf"(?:19|20)\d\d|the (?:\w+ )?(?:week|month|year|day)s?|a (?:few |couple of )?(?:days?|weeks?|months?)|"
    rf"(?:\d+|a|one|two|three|four|five|six|seven|eight|nine|ten) (?:days?|weeks?|months?|years?))"
    rf"(?:\s+\d{{1,4}}(?:st|nd|rd|th)?)?(?:,?\s+(?:19|20)\d\d)?\b.*$",
    CI,
)
_CUT = re.compile(
    r"\s+(?:because|since|cause|cuz|but|although|though|which|who|where|whereas|while|so that|so|with my|"
    r"with our|and i|and my|and we|if|unless|when|until|for (?:\w+ )?reasons?|for (?:health|work|religious))\b.*$|"
    r"\s*[,(]?\s*(?:e\.g\.|i\.e\.|(?:such as|like|"
    r"for example|for instance)\b).*$|\s+\(.*$",
    CI,
)
#: a comma and a qualifier after a value: "Paris, in the 11th", "a nurse, mostly nights", "cats, sadly"
QUALIFIER_TAIL = re.compile(
    r"\s*,\s*(?:mostly|mainly|usually|often|sometimes|especially|particularly|in the|on the|at the|near|around|"
    r"sadly|unfortunately|luckily|fortunately|honestly|apparently|obviously|basically|anyway|though|at least|"
    r"i think|i guess|i believe|if that|believe it or not|of course)\b.*$",
    CI,
)
_QUOTES = " \t\"'`“”‘’*_"
_PRONOUN_START = re.compile(
    r"^(?:you|your|yours|it|its|it's|this|that|these|those|them|him|her|his|me|myself|us|we|they|he|she|"
    r"ourselves|when|how|what|the way|"
    r"being|to be|here|there|everything|anything|something|nothing|all of|each|lots|a lot)\b",
    CI,
)
MAX_OBJECT_WORDS = 8


def clean(value: str | None, *, max_words: int = MAX_OBJECT_WORDS) -> str | None:
    """A captured value without trailing chatter ("… last year", "… because …"), or ``None``."""
    if not value:
        return None
    v = value.strip(_QUOTES)
    v = QUALIFIER_TAIL.sub("", _CUT.sub("", v))
    v = _WHEN.sub("", v)
    for _ in range(4):
        new = _TRAILERS.sub("", v).strip(_QUOTES)
        if new == v:
            break
        v = new
    if not v or len(v.split()) > max_words or _PRONOUN_START.match(v):
        return None
    return v


def clean_name(value: str | None) -> str | None:
    """A person's or pet's name: up to three name-like words, capitalised if typed in lower case."""
    v = clean(value, max_words=12)
    if not v:
        return None
    words: list[str] = []
    for w in v.split():
        if w.rstrip(".").lower() in TITLES and not words:
            words.append(w)
            continue
        if re.fullmatch(r"[A-Z]\.", w) and words:  # an initial: "J. R. Brown"
            words.append(w)
            continue
        bare = w.strip(".,!?;:")
        if not re.fullmatch(r"[^\W\d_][\w'.-]*", bare) or bare.lower() in NAME_STOP:
            break
        words.append(bare)
        if len([x for x in words if not x.endswith(".")]) == 3 or bare != w:
            break
    if words and words[-1].rstrip(".").lower() in TITLES:
        words.pop()
    if not words:
        return None
    name = " ".join(words)
    return name if any(c.isupper() for c in name) else name.title()


TITLES = frozenset("dr mr mrs ms mx prof sir dame".split())
NAME_STOP = frozenset(
    """and but or by from in at on of to for with the a an i you he she it we they is was not too also here
    there now though just still really very only btw lol haha tbh fyi btw thx thanks
    so because if when who which that this my your his her our their ok okay fine good great sorry thanks
    please yes no nope yeah lol haha""".split()
)

#: "I'm <capitalised word>" that is not a name
NOT_NAMES = frozenset(
    """ok okay fine good great sorry here back ready done home hungry tired busy sick alright awesome new happy
    sad bored lost confused excited cool sure right well glad thrilled fine thanks thank gonna going just
    hungry sleepy sorry angry lonely ready crazy lazy thirsty silly lucky funny worried stuck free late early
    single married divorced pregnant sick ill alone awake asleep alive sober broke vegan vegetarian retired
    unemployed home away out off in on up down over good bad fat thin tall short old young
    monday tuesday wednesday thursday friday saturday sunday january february march april may june july august
    september october november december i""".split()
)


def items(value: str | None) -> list[str]:
    """A list value ("French, Spanish and German") as its items."""
    v = clean(value, max_words=24)
    if not v:
        return []
    parts = re.split(r"\s*,\s*(?:and\s+|or\s+|&\s+)?|\s+(?:and|or|&|as well as|plus)\s+", v, flags=CI)
    out = []
    for p in parts:
        c = clean(p, max_words=6)
        if c and c.lower() not in {"more", "stuff", "things", "others", "so on", "etc", "etc."}:
            out.append(c)
    return out


def singular(word: str) -> str:
    w = word.lower()
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith("s") and not w.endswith("ss") and len(w) > 3 and w not in {"glasses", "parents", "siblings"}:
        return w[:-1]
    return w


def strip_article(value: str) -> str:
    return re.sub(r"^(?:a|an|the)\s+", "", value.strip(), flags=CI)
