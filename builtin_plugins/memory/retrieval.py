"""From a new message to the words that find its facts: stop words out, question words mapped to predicates.

A question rarely shares a word with the fact that answers it: "what do I
do for a living?" asks for ``occupation``, "where's home?" for
``lives_in``. :data:`CUES` maps each predicate to the words and phrases
people ask about it with; :func:`build_query` finds those cues in the
message and adds the predicates they point to (plus a few synonyms), then
the message's own content words. The store turns the result into a safe
FTS5 OR query ranked by bm25 — this module never scans facts itself.

The same table read the other way (:func:`cues_for`) says which questions
a predicate answers; the tests use it to check that every predicate of the
vocabulary can be reached by a question.
"""

from __future__ import annotations

import re
from functools import lru_cache

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")

STOP_WORDS = frozenset(
    """a about above after again all am an and any anything are aren't as at be been before being below
    between both but by can can't could couldn't did didn't do does doesn't doing don't down during each
    else ever few for from further had has have having he her here hers herself him himself his how i i'd
    i'll i'm i've if in into is isn't it it's its itself just know let let's like me mine more most much
    must my myself no nor not now of off on once only or other our ours ourselves out over own please
    really remember remind same say she should so some such tell than thank thanks that that's the their
    theirs them themselves then there these they this those through to too under until up us very was
    wasn't we were what what's whats when where where's wheres which while who who's whom whose why will
    with would you you're your yours yourself hey hi hello ok okay again recall told said think s t m d ll
    re ve also still one any ask asked mention mentioned again quick question""".split()
)

#: predicate -> (cue patterns people ask with, the words they add: the predicate asked about first)
CUES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "occupation": (
        (r"for a living", r"do for work", r"what do i do\b", r"\bjobs?\b", r"occupation", r"profession",
         r"career", r"work as", r"employed", r"line of work", r"what i do\b", r"trade"),
        ("occupation", "job", "works_at", "works_in"),
    ),
    "works_at": (
        (r"\bwork(?:s|ing|place)?\b", r"employer", r"company", r"office", r"\bboss\b", r"colleague"),
        ("works_at", "occupation", "works_in"),
    ),
    "lives_in": (
        (r"\bhome\b", r"where (?:do|did) i (?:live|stay)", r"\blive\b", r"\blives?\b", r"reside", r"\bcity\b",
         r"\btown\b", r"based", r"neighbou?rhood", r"where am i\b", r"located", r"\baddress\b", r"\bcountry\b",
         r"weather", r"nearby", r"near me", r"around here", r"time ?zone"),
        ("lives_in", "address", "location", "moved_from", "hometown"),
    ),
    "from": (
        (r"where .*\bfrom\b", r"origin", r"hometown", r"nationality", r"background", r"roots", r"heritage",
         r"grow up", r"grew up", r"childhood", r"raised", r"\bborn\b"),
        ("from", "born_in", "grew_up_in", "hometown", "nationality"),
    ),
    "moved_from": (
        (r"\bmov(?:e|ed|ing)\b", r"relocat", r"used to live", r"previously"),
        ("moved_from", "lives_in"),
    ),
    "age": (
        (r"how old", r"\bage\b", r"years old", r"\bolder\b", r"\byounger\b"),
        ("age", "birthday", "birth_year"),
    ),
    "birthday": (
        (r"birthday", r"\bborn\b", r"\bbirth\b", r"b-?day", r"celebrate", r"anniversary"),
        ("birthday", "birth_year", "born_in", "age"),
    ),
    "name": (
        (r"\bname\b", r"\bcalled\b", r"call me", r"who am i\b", r"\bcall\b"),
        ("name", "nickname", "surname"),
    ),
    "allergy": (
        (r"allerg", r"can i eat", r"safe to eat", r"should i eat", r"\breact", r"intoleran"),
        ("allergy", "avoids", "health", "diet"),
    ),
    "food": (
        (r"\beat\b", r"\bfood\b", r"\bmeal\b", r"dinner", r"lunch", r"breakfast", r"recipe", r"\bcook",
         r"restaurant", r"snack", r"\bdrink\b", r"\bbake\b", r"grocer"),
        ("diet", "allergy", "avoids", "dislikes", "likes", "favourite"),
    ),
    "health": (
        (r"health", r"medical", r"condition", r"\bsick\b", r"\bill\b", r"illness", r"medication", r"medicine",
         r"doctor", r"diagnos", r"suffer", r"symptom", r"exercise", r"workout"),
        ("health", "allergy", "diet"),
    ),
    "speaks": (
        (r"languages?", r"\bspeak", r"fluent", r"translat", r"bilingual", r"mother tongue", r"native"),
        ("speaks", "learning", "native_language"),
    ),
    "learning": (
        (r"learn", r"studying", r"practi[cs]e", r"lessons?", r"\bclass(?:es)?\b", r"course"),
        ("learning", "studies"),
    ),
    "studies": (
        (r"\bstud(?:y|ies|ied|ent)\b", r"school", r"university", r"\buni\b", r"college", r"\bmajor", r"degree"),
        ("studies", "studies_at", "learning"),
    ),
    "likes": (
        (r"\blikes?\b", r"\blove\b", r"enjoy", r"\bfan\b", r"hobb", r"\bfun\b", r"interest",
         r"\bgifts?\b", r"\bpresents?\b", r"recommend", r"favou?rite", r"\bfav\b", r"\bfave\b", r"free time",
         r"spare time", r"weekend", r"suggest"),
        ("likes", "hobby", "favourite", "prefers"),
    ),
    "dislikes": (
        (r"\bhate", r"dislike", r"avoid", r"can'?t stand", r"\bannoy"),
        ("dislikes", "avoids", "allergy"),
    ),
    "prefers": (
        (r"prefer", r"rather", r"\bfavou?rite\b"),
        ("prefers", "favourite", "likes"),
    ),
    "has": (
        (r"\bpets?\b", r"\banimals?\b", r"\bown\b"),
        ("has", "owns", "dog", "cat"),
    ),
    "car": (
        (r"\bcar\b", r"\bdrive\b", r"vehicle", r"\bride\b"),
        ("car", "owns"),
    ),
    "family": (
        (r"famil", r"\bkids?\b", r"child", r"\bsons?\b", r"daughter", r"\bparents?\b", r"sibling"),
        ("son", "daughter", "kids", "children", "wife", "husband", "partner", "has"),
    ),
    "marital_status": (
        (r"married", r"\bsingle\b", r"spouse", r"relationship", r"partner", r"\bwife\b", r"husband"),
        ("marital_status", "spouse", "wife", "husband", "partner", "fiancé"),
    ),
    "diet": (
        (r"vegetarian", r"vegan", r"\bdiet", r"\bmeat\b", r"gluten", r"halal", r"kosher"),
        ("diet", "avoids", "allergy"),
    ),
    "religion": ((r"religio", r"\bfaith\b", r"church", r"mosque", r"temple", r"pray"), ("religion",)),
}

#: words people use for the same relative / animal (the stored subject keeps the word said)
SYNONYMS: dict[str, tuple[str, ...]] = {
    "mother": ("mom", "mum", "mother", "mama", "mommy"),
    "father": ("dad", "father", "papa", "daddy"),
    "child": ("kid", "kids", "child", "children", "son", "daughter"),
    "spouse": ("wife", "husband", "spouse", "partner"),
    "grandmother": ("grandma", "grandmother", "granny", "nana"),
    "grandfather": ("grandpa", "grandfather", "granddad"),
    "dog": ("dog", "puppy", "pup", "doggo"),
    "cat": ("cat", "kitten", "kitty"),
    "pet": ("pet", "dog", "cat"),
    "favourite": ("favourite", "favorite", "fav", "fave"),
    "colour": ("colour", "color"),
    "film": ("film", "movie"),
    "flavour": ("flavour", "flavor"),
    "neighbour": ("neighbour", "neighbor"),
}
_SYNONYM_OF: dict[str, tuple[str, ...]] = {}
for _group in SYNONYMS.values():
    for _w in _group:
        _SYNONYM_OF.setdefault(_w, _group)


@lru_cache(maxsize=1)
def _compiled() -> list[tuple[re.Pattern[str], re.Pattern[str], tuple[str, ...]]]:
    """Every cue as ``(cue, the whole words it touches, the words it adds)`` (the first word is
    the predicate it asks about).

    The bare cue is what is searched: ``[\\w'-]*(?:cue)[\\w'-]*`` matches exactly when
    ``cue`` does, but backtracks at every position of the text, which made
    177 cues cost ~270 µs a message; the whole-word pattern only runs to
    consume a cue that is there.
    """
    out = []
    for _predicate, (cues, words) in CUES.items():
        for cue in cues:
            # the whole word a cue touches is consumed ("allergic", not "allerg" + "ic")
            whole = re.compile(rf"[\w'-]*(?:{cue})[\w'-]*")
            out.append((re.compile(cue), whole, words))
    # longer cues first, so "for a living" is consumed before "living" could count as a word
    out.sort(key=lambda item: -len(item[1].pattern))
    return out


def cues_for(predicate: str) -> tuple[str, ...]:
    """The question cues that lead to ``predicate`` (the table read backwards)."""
    return tuple(
        cue for _p, (cues, words) in CUES.items() for cue in cues if predicate in words
    )


def build_query(message: str, *, max_words: int = 48) -> str:
    """The words to search the person's facts with for ``message``; ``""`` when nothing is worth searching.

    >>> build_query("what do I do for a living?")
    'occupation job works_at works_in'
    """
    return analyze(message, max_words=max_words)[0]


def analyze(message: str, *, max_words: int = 48) -> tuple[str, frozenset[str]]:
    """``(query words, the predicates the message asks about)``.

    The second part lets the caller rank a fact of the asked-about predicate
    ("when is my birthday?" → ``birthday``) above one that only shares a
    related word (``age``): bm25 cannot weigh one query word over another.
    """
    text = " ".join(message.lower().replace("\u2019", "'").split())[:2000]
    added: dict[str, None] = {}
    asked: set[str] = set()
    for cue, whole, words in _compiled():
        if cue.search(text):
            asked.add(words[0])
            for w in words:
                added.setdefault(w, None)
            text = whole.sub(" ", text)
    for word in _WORD.findall(text):
        w = word.split("'")[0] if word.endswith("'s") else word
        if w in STOP_WORDS or len(w) < 2 and not w.isdigit():
            continue
        added.setdefault(w, None)
        for syn in _SYNONYM_OF.get(w, ()):
            added.setdefault(syn, None)
    return " ".join(list(added)[:max_words]), frozenset(asked)
