"""The default offline fact extractor: what a person says about themselves, as facts.

Pure functions, no network, no model. :func:`extract_facts` takes the
user's message (and the facts already known about them, for corrections)
and returns :class:`~exoclaw_hooks.Fact` s with ``subject`` normalised
(``"user"``, ``"user's dog"`` …), a predicate from the controlled vocabulary
of :mod:`.vocab` and a confidence (0.9 stated outright, 0.6 inferred).

How a message is read:

1. **Sentences** — split at ``.``, ``!``, ``?``, ``;`` and line breaks, but
   not inside abbreviations (``Dr.``, ``St.``, ``Mr.``, ``e.g.``, ``U.S.``,
   initials).
2. **Questions** are skipped ("what's my dog's name?"), unless they only wrap
   a statement ("can you remember that my dog is called Luna?").
3. **Clauses** — a sentence is cut where a new statement starts ("…, and I
   work at …", "… but my sister …"); a clause that drops its subject ("I
   live in Paris and work as a nurse") borrows the previous one's.
4. **Negated and hypothetical clauses** give nothing ("I don't have a dog",
   "my name isn't Bob", "I never lived in Rome", "if I lived in Rome", "I
   want to move to Spain"), except idioms that state a preference ("I can't
   stand cilantro", "I don't like olives" → dislikes).
5. **Corrections** ("actually, it's Lena", "sorry, I meant Lyon", "no wait,
   make that 8") replace the object of the most recent fact: from this
   message if it stated one, else the newest known fact.
6. Each remaining clause: its **subject** ("I", "my dog", "my sister Ana",
   "my dog's name", "my favourite colour") and then the verb-phrase rules
   (:mod:`.grammar`, :mod:`.rules_personal`, :mod:`.rules_work`) or the
   attribute rules (:mod:`.attributes`).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Iterable, Sequence

from exoclaw_hooks import Fact

from .attributes import ATTRIBUTES, attribute_facts, entity_copula_facts
from .grammar import CI, EXPLICIT, INFERRED, fact, verb_phrase_facts
from .sentences import split_clauses, split_sentences
from .speakers import split_prefix
from .text import NAME_STOP, NOT_NAMES, clean, clean_name
from .vocab import (
    KIN_ADJECTIVES,
    PETS,
    RELATIONS,
    SET_VALUED,
    USER,
    base_predicate,
    parse_number,
)

#: a clause longer than this is not a statement of fact (and regexes stay cheap)
MAX_CLAUSE = 300

__all__ = ["extract_facts", "split_sentences", "split_clauses", "EXPLICIT", "INFERRED"]


# ---------------------------------------------------------------- filters

_DISCOURSE = re.compile(
    r"^(?:oh|well|so|ok|okay|also|btw|by the way|anyway|anyways|hey|hi|hello|hiya|yo|yeah|yes|yep|and|plus|"
    r"haha|lol|hmm|um|fun fact|heads up|for context|just so you know|for the record|fyi|for your information|"
    r"i think|i guess|i believe|i suppose|i reckon|pretty sure|i'm pretty sure|to be honest|tbh|honestly|"
    r"in fact|as you know|as i said|like i said|you know what|guess what|oh and|and also|also note|"
    r"by profession|by trade|for what it's worth|fwiw|just fyi|quick note|note|update|"
    r"(?:big|good|great|exciting|bad|sad|some) news|news|quick update|small update|life update)"
    r"(?:\s+that)?\s*(?:[,:!.-]+\s*|\s+)",
    CI,
)
_HEDGES = re.compile(r"^(?:i think|i guess|i believe|i suppose|i reckon|pretty sure|i'm pretty sure)\b", CI)
_REMEMBER = re.compile(
    r"^(?:(?:please|can you|could you|would you|will you|do|just|and)\s+)*(?:remember|note|keep in mind|"
    r"don't forget|do not forget|never forget|bear in mind|make a note|take note|write down|save|store)"
    r"(?:\s+(?:this|that))?(?:\s+that)?\s*[:,-]?\s*",
    CI,
)
_QUESTION_START = re.compile(
    r"^(?:what|what's|whats|where|where's|wheres|when|who|who's|whom|whose|why|how|how's|which|do you|"
    r"did you|can you|could you|would you|will you|have you|are you|were you|is it|is that|is this|is my|"
    r"are my|do i|did i|am i|was i|have i|does my|did my|was my|were my|should i|shall i|can i|may i)\b",
    CI,
)
#: phrases that state a preference although they contain a negation
_NEGATIVE_IDIOMS = re.compile(
    r"\b(?:can'?t|cannot|can not)\s+(?:stand|bear|stomach|get enough of|live without)\b|"
    r"\b(?:don'?t|do not|doesn'?t|does not)\s+(?:like|enjoy|care for)\b|"
    r"\bnot\s+(?:a\s+(?:big\s+|huge\s+)?fan\s+of|into|keen\s+on)\b|"
    r"^(?:i|we|my\s+[\w' -]+?)\s+(?:can'?t|cannot|can not|don'?t|do not|doesn'?t|does not|never)\s+(?:eat|drink)\b",
    CI,
)
_NEGATION = re.compile(
    r"n't\b|\b(?:not|never|no|nobody|nothing|neither|nor|none|nowhere|cannot|anymore|no longer|without|"
    r"hardly|barely|ain't|isnt|dont|doesnt|didnt|wasnt|wont|cant|havent|hasnt|aint)\b",
    CI,
)
#: hypotheticals, wishes and plans: lower-case words only, so names ("Hope", "Will", "May") stay names
_HYPOTHETICAL = re.compile(
    r"\b(?:if|wish|hope|hoping|would(?!\s+rather)|wouldn't|could|might|maybe|perhaps|should|want to|wanna|"
    r"wants to|going to|gonna|planning|plan to|plans to|thinking of|thinking about|considering|about to|"
    r"used to|someday|one day|dream of|dreaming of|supposed to|pretend|imagine|let's say|suppose|"
    r"in the future|next (?:year|month|week)|soon|will|we'll|we'd|i'd(?!\s+rather)|i'll)\b|"
    r"\bI'd\b(?!\s+rather)|\bI'll\b|\bmay\s+(?:be|have|move|live|go|get|need|want|not|start|try)\b"
)
#: the same, capitalised at the start of a clause
_HYPOTHETICAL_START = re.compile(
    r"^(?:if|maybe|perhaps|hopefully|someday|one day|suppose|imagine|let's say|when|whenever|once|unless|"
    r"we'll|we'd|i'd(?!\s+rather)|i'll)\b",
    CI,
)


#: "since last year, I …", "after 10 years in London I …": a short lead-in before the subject
_LEAD_IN = re.compile(
    r"^(?:since|after|for|in|during|last|this|these days|nowadays|currently|right now|today|recently|lately|"
    r"as of|at the moment|for now|these|sadly|luckily|unfortunately|fortunately|by the way)\b[\w' ]{0,40}?,?\s+"
    r"(?=(?:i|i'm|i've|my|we|we're|we've|our)\b)",
    CI,
)


def _strip_discourse(clause: str) -> tuple[str, bool]:
    """``(clause without "oh, btw, since last year, …", whether it was hedged)``."""
    hedged = False
    for _ in range(4):
        if _HEDGES.match(clause):
            hedged = True
        m = _DISCOURSE.match(clause) or _LEAD_IN.match(clause)
        if not m or m.end() >= len(clause):
            break
        clause = clause[m.end():]
    return clause.strip(), hedged


def is_negated(clause: str) -> bool:
    return bool(_NEGATION.search(_NEGATIVE_IDIOMS.sub(" ", clause)))


def is_hypothetical(clause: str) -> bool:
    return bool(_HYPOTHETICAL_START.match(clause.strip()) or _HYPOTHETICAL.search(clause))


# ---------------------------------------------------------------- corrections

_MARKER = re.compile(
    r"^(?:(?:actually|sorry|oops|whoops|correction|wait|no|nope|nah|my bad|my mistake|err|erm|uh|"
    r"scratch that|typo|no wait|oh wait)\b[\s,:;!.-]*)+",
    CI,
)
_HEAD = re.compile(
    r"^(?:it'?s|it is|it was|that'?s|that is|his name is|her name is|its name is|the name is|"
    r"(?P<strong>i meant(?: to say)?|i mean|make (?:that|it)|it should be|should be|that should be|"
    r"i should have said|should have said|i wanted to say))\s+",
    CI,
)
_CORRECTION_STOP = frozenset(
    """worries problem problems thanks thank way idea clue kidding joke that this it sure ok okay fine right
    yes yeah nope wrong true false good great lol haha nothing never mind nevermind worry matter bother
    raining sunny cold hot late early fine alright correct""".split()
)


def _correction_value(text: str) -> str | None:
    v = re.sub(r",?\s+(?:not|instead of|rather than)\s+.*$", "", text.strip(), flags=CI)
    v = clean(v, max_words=4)
    if not v or v.lower() in _CORRECTION_STOP or v.lower().split()[0] in _CORRECTION_STOP:
        return None
    if re.search(r"\w+ing$", v) and not v[:1].isupper():
        return None
    if re.match(r"^(?:the|a|an|my|your|this|that|these|those|his|her|our|their|some|any|other)\b", v, CI):
        return None  # "I meant the other file": not a value
    return v


def _corrected(target: Fact, value: str) -> Fact | None:
    predicate = base_predicate(target.predicate)
    if predicate in ("name", "nickname", "surname"):
        value = clean_name(value) or ""
    elif predicate == "age":
        n = parse_number(value.split()[0])
        value = str(n) if n else ""
    if not value:
        return None
    return Fact(subject=target.subject, predicate=predicate, object=value, confidence=EXPLICIT)


def _shape(text: str) -> str:
    t = text.strip()
    if re.match(r"^\d", t) or parse_number(t.split()[0] if t.split() else "") is not None:
        return "number"
    return "proper" if t[:1].isupper() else "word"


def _target(value: str, said: list[Fact], known: Iterable[Fact]) -> Fact | None:
    """The fact a correction replaces: the most recent one (this message first) whose value looks alike.

    "make that 35" corrects the last number (an age), "I meant Lyon" the last
    proper name. With none alike among the five most recent, nothing: a
    correction that fits no fact is not one ("sorry, Tuesday works").
    """
    recent = list(reversed(said)) + sorted(
        (f for f in known if not f.superseded_at),
        key=lambda f: (f.learned_at or "", f.id or 0),
        reverse=True,
    )
    shape = _shape(value)
    for f in recent[:5]:
        if _shape(f.object) == shape:
            return f
    return None


#: the words that make a value a clause, not a value: "sorry I was late", "sorry to hear that"
_NOT_VALUE_START = frozenset(
    """i i'm i've i'd i'll it it's we you he she they there here to about for that this what so if just be
    was were am is are have had do did can could would will should hear see""".split()
)


def _is_correction(value: str, marked: bool, head: "re.Match[str] | None") -> bool:
    """Whether ``value`` after a marker / head is a corrected value, not small talk.

    Small talk shares the words of a correction ("Sorry to hear that!",
    "Should be fun!", "sorry I was late"), so outside the one unambiguous
    form — a marker AND "I meant / make that / it should be" — the value
    must look like a value: a name or a number of at most three words.
    """
    words = value.split()
    if not words or words[0].lower() in _NOT_VALUE_START or len(words) > 4:
        return False
    if marked and head is not None and head["strong"]:
        return True  # "sorry, I meant green", "oops, make that pasta"
    if len(words) > 3:
        return False
    if _shape(value) == "number":
        return True
    return all(w[:1].isupper() or w.lower() in _NAME_JOINERS for w in words) and words[-1][:1].isupper()


_NAME_JOINERS = frozenset("of de la le von van der del da di and".split())


# ---------------------------------------------------------------- subjects

_KIN = RELATIONS | PETS


_NOT_APPOSITIVE = frozenset("too also here there now then who which that and or but so still just really".split())


def _plural_kin(word: str) -> bool:
    w = word.lower()
    return w.endswith("s") and (w[:-1] in _KIN or w[:-2] in _KIN)


def _entity(segment: str) -> tuple[str, str | None] | None:
    """``"little sister Ana"`` → ``("little sister", "Ana")``; ``None`` when not a relative or pet."""
    words = segment.replace(",", " ").split()
    if not words:
        return None
    i = 0
    while i < len(words) - 1 and words[i].lower() in KIN_ADJECTIVES:
        i += 1
    j = i
    while j < len(words) and (words[j].lower() in _KIN | {"best", "friend", "in-law"} or _plural_kin(words[j])):
        j += 1
    if j == i or not (words[j - 1].lower() in _KIN or _plural_kin(words[j - 1])):
        return None
    rest = words[j:]
    if len(rest) == 1 and rest[0].isalpha() and rest[0].islower() and rest[0] not in _NOT_APPOSITIVE:
        rest = [rest[0].title()]  # "my husband tom is a chef"
    if rest and not all(w[:1].isupper() for w in rest):
        return None
    noun = " ".join(w.lower() for w in words[:j])
    return noun, (" ".join(rest) if rest else None)


_ATTRIBUTE_HEADS = frozenset(
    "name age birthday bday favourite favorite fav fave job email phone address nickname".split()
)
_NP_END = frozenset(
    """is are was were 's lives live works work has have had loves love likes like hates hate speaks speak
    moved turned turns just recently got gets goes go studies study teaches drives owns prefers will can
    does doesn't isn't wasn't never also still called named comes came grew enjoys adores currently now
    suffers lived worked became 've 're 'd would could might should always really""".split()
)
_VALUE_START = re.compile(
    r"^(?:a|an|the|called|named|from|in|at|on|allergic|very|really|so|not|almost|about|only|now|\d|"
    r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|sixty|"
    r"seventy|eighty|ninety|[A-Z])",
)


def _parse_my(rest: str) -> tuple[list[str], str | None, str, list[Fact]] | None:
    """``"dog's name is Luna"`` → ``(["dog"], "name", "is Luna", [])``: owner chain, attribute, verb phrase."""
    words = rest.split()
    np: list[str] = []
    vp_words: list[str] = []
    for i, w in enumerate(words[:8]):
        wl = w.lower().strip(",")
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if wl in _NP_END and not (np and w[:1].isupper()):  # "my son Will is 7"
            vp_words = words[i:]
            break
        if wl.endswith("'s"):
            stem = wl[:-2]
            said_is = stem not in _KIN and " ".join([*np, stem]).lower() in ATTRIBUTES  # "my name's Jess"
            if said_is or not nxt or nxt.lower() in _NP_END or _VALUE_START.match(nxt):
                np.append(w[:-2])
                vp_words = ["is", *words[i + 1:]]
                break
        if wl.endswith("s") and wl[:-1] in _KIN and wl not in _KIN:  # typed without the apostrophe
            if nxt.lower() in _ATTRIBUTE_HEADS:  # "my dogs name is luna"
                np.append(w[:-1] + "'s")
                continue
            if nxt.lower() in ("called", "named") and " and " not in " ".join(words[i:]).lower():
                np.append(w[:-1])  # "my cats called miso"
                vp_words = ["is", *words[i + 1:]]
                break
        np.append(w.strip(","))
    else:
        return None
    if not np or not vp_words:
        return None
    segments: list[str] = []
    current: list[str] = []
    for w in np:
        if w.lower().endswith("'s") or w.endswith("s'"):
            current.append(w[:-2] if w.lower().endswith("'s") else w[:-1])
            segments.append(" ".join(current))
            current = []
        else:
            current.append(w)
    if current:
        segments.append(" ".join(current))
    chain: list[str] = []
    extra: list[Fact] = []
    for seg in segments[:-1]:
        ent = _entity(seg)
        chain.append(ent[0] if ent else seg.lower())
    last = _entity(segments[-1])
    if last is not None:
        chain.append(last[0])
        if last[1]:
            extra += fact(chain[:], "name", clean_name(last[1]), EXPLICIT)
        return chain, None, " ".join(vp_words), extra
    return chain, segments[-1], " ".join(vp_words), extra


_I_FORMS = (
    (re.compile(r"^i\s*'?\s*m\b|^i\s+am\b", CI), "am "),
    (re.compile(r"^i\s*'ve\b|^i\s+have\b", CI), "have "),
    (re.compile(r"^i\s*'d\s+(?=rather\b)", CI), ""),
    (re.compile(r"^i\s+was\s+(?=born\b)", CI), ""),
    (re.compile(r"^(?:i|me)\b", CI), ""),
)
_WE_FORMS = (
    (re.compile(r"^we\s*'re\b|^we\s+are\b", CI), "am "),
    (re.compile(r"^we\s*'ve\b|^we\s+have\b", CI), "have "),
    (re.compile(r"^(?:we|(?:my|our)\s+[\w-]+\s+and\s+(?:i|me)|(?:me|i)\s+and\s+(?:my|our)\s+[\w-]+)\b", CI), ""),
)
#: chat style without a subject: "just moved to Amsterdam!", "been living in Tokyo since 2015"
_NO_SUBJECT = re.compile(
    r"^(?:just|recently|finally|currently|moved|relocated|born|raised|brought up|grew up|living|working|studying|"
    r"learning)\b|"
    r"^(?P<been>been)\b",
    CI,
)


_RELATIVE = re.compile(r"^(?P<np>(?:my|our)\s+[\w' -]+?),\s*who(?:'s|\s+is)\s+(?P<rel>[^,]+),\s*(?P<rest>.+)$", CI)
_INVERTED = re.compile(r"^(?P<x>.+?)\s+(?:is|are)\s+my\s+(?P<np>[\w' -]+?)(?:\s+now)?$", CI)
_NOT_A_VALUE = re.compile(r"^(?:my|i|it|that|this|there|he|she|they|what|which|who|where|how|here|everything)\b", CI)


def _inverted(clause: str, confidence: float) -> list[Fact] | None:
    """"Luna is my dog's name", "green is my favourite colour", "Ana is my sister": read backwards.

    ``None`` when the clause is not of that shape (or says nothing we keep).
    """
    m = _INVERTED.match(clause)
    if not m or _NOT_A_VALUE.match(m["x"]):
        return None
    parsed = _parse_my(f"{m['np']} is {m['x']}")
    if parsed is None:
        return None
    chain, attribute, vp, extra = parsed
    if attribute is None:  # a relative or pet: "Ana is my sister"
        return extra + fact(chain, "name", clean_name(m["x"]), confidence) if m["x"][:1].isupper() else None
    known = attribute.lower() in ATTRIBUTES or re.match(r"^(?:all-time\s+)?(?:favou?rite|fave?)\b", attribute, CI)
    return attribute_facts(chain, attribute, m["x"], confidence) if known else None


def _clause_facts(
    clause: str, confidence: float, entity: list[str] | None = None, *, bare: bool = True
) -> list[Fact]:
    """The facts one clause states; ``entity`` is who "he"/"she"/"his"/"her" refers to (the last one named).

    ``bare``: a clause without a subject ("just moved to Rome") may be the
    speaker's; not when it goes on from another sentence's subject ("the
    little one is doing great - learning commands").
    """
    c = clause.strip(" \t\"'`.,!")
    if not c or len(c) > MAX_CLAUSE:
        return []
    if entity:
        m = re.match(r"^(?:he|she)\b", c, CI)
        if m:
            return verb_phrase_facts(entity, c[m.end():].strip(), confidence)
        m = re.match(r"^(?:his|her)\s+", c, CI)
        if m:
            parsed = _parse_my(c[m.end():])
            if parsed and parsed[1] is not None and not parsed[0]:
                cop = re.match(r"^(?:is|are|'s)\s+(?P<v>.+)$", parsed[2], CI)
                return attribute_facts(entity, parsed[1], cop["v"], confidence) if cop else []
            return []
    # whole-clause shapes first
    m = re.match(r"^(?:you can |please |just |so |now )*call me\s+(?P<o>.+)$", c, CI)
    if m:
        return fact([], "name", clean_name(m["o"]), EXPLICIT)
    m = re.match(r"^(?:everyone|people|most people|my friends|friends|they all)\s+calls?\s+me\s+(?P<o>.+)$", c, CI)
    if m:
        return fact([], "nickname", clean_name(m["o"]), confidence)
    m = re.match(r"^(?:the\s+)?name'?s\s+(?P<o>.+)$", c, CI)
    if m:
        return fact([], "name", clean_name(m["o"]), confidence)
    m = re.match(r"^(?P<x>[A-Z][\w' -]*?)\s+is\s+(?:my\s+)?home(?:\s+now)?$", c)
    if m:
        return fact([], "lives_in", clean(m["x"]), confidence)
    m = re.match(r"^home(?:\s+for\s+me)?\s+is\s+(?:now\s+)?(?P<x>.+)$", c, CI)
    if m:
        return fact([], "lives_in", clean(m["x"]), confidence)
    inverted = _inverted(c, confidence)
    if inverted is not None:
        return inverted
    m = _RELATIVE.match(c)  # "my grandmother, who's 92, lives in Leeds": two statements
    if m:
        np = m["np"]
        return _clause_facts(f"{np} is {m['rel']}", confidence) + _clause_facts(f"{np} {m['rest']}", confidence)

    for pattern, prefix in _WE_FORMS:
        m = pattern.match(c)
        if m:
            return verb_phrase_facts([], prefix + c[m.end():].strip(), min(confidence, INFERRED))
    for pattern, prefix in _I_FORMS:
        m = pattern.match(c)
        if m:
            return verb_phrase_facts([], prefix + c[m.end():].strip(), confidence)
    m = re.match(r"^(?P<who>my|our)\s+", c, CI)
    if not m:
        subjectless = _NO_SUBJECT.match(c) if bare else None
        if subjectless:
            return verb_phrase_facts([], ("have " if subjectless["been"] else "") + c, min(confidence, INFERRED))
        return []
    parsed = _parse_my(c[m.end():])
    if parsed is None:
        return []
    chain, attribute, vp, extra = parsed
    conf = confidence if m["who"].lower() == "my" else min(confidence, INFERRED)
    cop = re.match(r"^(?:is|are|'s)\s+(?P<v>.+)$", vp, CI)
    if attribute is not None:
        if not cop:
            return extra
        return extra + attribute_facts(chain, attribute, cop["v"], conf)
    found = verb_phrase_facts(chain, vp, conf)
    if not found and cop:
        found = entity_copula_facts(chain, cop["v"], conf)
    return extra + found


# ---------------------------------------------------------------- the whole message


def extract_facts(text: str, known: Sequence[Fact] = ()) -> list[Fact]:
    """The facts ``text`` (a user's message) states about the speaker and their people, pets and things.

    A prefix naming the speaker (``Caroline: I moved to Berlin``, as a group
    chat delivers it, maybe after a ``[time stamp]``) makes the facts
    Caroline's (subject ``Caroline``, ``Caroline's dog`` …) instead of the
    user's; a label (``turn 5:``, ``Note:``) is skipped (:mod:`.speakers`).

    :param known: the person's current facts; a correction ("actually, it's
        Lena") without a fact earlier in ``text`` replaces the newest of the
        same speaker's facts whose value looks alike.
    :returns: facts in the order said; ``learned_at`` is left empty.
    """
    speaker, text = split_prefix(text)
    own = [_as_user(f, speaker) for f in known]
    facts = _extract(text, [f for f in own if f is not None])
    return [_as_speaker(f, speaker) for f in facts]


def _as_user(fact: Fact, speaker: str | None) -> Fact | None:
    """A known fact of ``speaker`` (``None``: the user) with its subject rooted at ``user``; else ``None``."""
    root = speaker or USER
    subject = fact.subject
    if subject == root:
        return replace(fact, subject=USER) if speaker else fact
    if subject.startswith(root + "'s "):
        return replace(fact, subject=USER + subject[len(root):]) if speaker else fact
    return None


def _as_speaker(fact: Fact, speaker: str | None) -> Fact:
    if not speaker:
        return fact
    if fact.subject == USER:
        return replace(fact, subject=speaker)
    if fact.subject.startswith(USER + "'s "):
        return replace(fact, subject=speaker + fact.subject[len(USER):])
    return fact


def _extract(text: str, known: Sequence[Fact]) -> list[Fact]:
    out: list[Fact] = []
    for index, sentence in enumerate(split_sentences(text)):
        bare = index == 0 or sentence[:1].isupper()  # not the lower-case rest after a dash
        s, hedged = _strip_discourse(sentence)
        asked = s.rstrip().endswith("?")
        m = _REMEMBER.match(s)
        if m and m.end() < len(s):
            s, asked = s[m.end():], False
        s = s.rstrip(" ?!.")
        if asked or _QUESTION_START.match(s):
            continue
        if not any(ch.isupper() for ch in re.sub(r"\bI\b", "", s)):  # typed all in lower case: "im tom and im 28"
            s = _LOWER_NAME.sub(lambda m: m.group(1) + " " + _as_name(m.group(2)), s)
        for clause in split_clauses(s):
            _read_clause(clause, out, known, hedged, bare)
    if _MOVED.search(text):
        out += _moved_from_known(out, known)
    return _dedupe(out)


_MOVED = re.compile(r"\b(?:moved|relocated|moving)\b", CI)


def _moved_from_known(said: list[Fact], known: Sequence[Fact]) -> list[Fact]:
    """"I moved to Berlin" while "lives in Paris" is known: they moved from Paris (inferred)."""
    out = []
    for f in said:
        if f.predicate != "lives_in" or any(g.subject == f.subject and g.predicate == "moved_from" for g in said):
            continue
        for k in known:
            if (k.subject == f.subject and k.predicate == "lives_in" and not k.superseded_at
                    and k.object.casefold() != f.object.casefold()):
                out.append(Fact(subject=f.subject, predicate="moved_from", object=k.object, confidence=INFERRED))
                break
    return out


_LOWER_NAME = re.compile(
    r"\b((?i:i'm|i am|call me|name is|name's))\s+([a-z][a-z'-]+)(?=\s*(?:$|,|and\b|but\b|from\b|here\b))"
)
_NOT_NAME_SUFFIX = re.compile(r"(?:ed|ing|ful|ous|ive|ish|able|ible|less|ic|al)$")


def _as_name(word: str) -> str:
    """``word`` capitalised when it can be a first name ("tom"), else as it is ("tired", "hungry")."""
    if word in NOT_NAMES or word in NAME_STOP or _NOT_NAME_SUFFIX.search(word) or len(word) < 2:
        return word
    return word.capitalize()


def _read_clause(
    clause: str, out: list[Fact], known: Sequence[Fact], hedged: bool = False, bare: bool = True
) -> None:
    clause, hedged_here = _strip_discourse(clause)
    confidence = INFERRED if hedged or hedged_here else EXPLICIT
    marker = _MARKER.match(clause)
    rest = clause[marker.end():].strip() if marker else clause
    head = _HEAD.match(rest)
    strong = bool(head and head["strong"])
    if not rest or _QUESTION_START.match(rest):
        return
    if marker or strong:
        body = rest[head.end():] if head else rest
        body = re.sub(r",?\s+(?:not|instead of|rather than)\s+[\w' -]+$", "", body, flags=CI)
        if is_negated(body) or is_hypothetical(body):
            return
        found = _clause_facts(body, confidence, _last_entity(out), bare=bare)
        if found:
            out.extend(found)
            return
        value = _correction_value(body)
        if value is None or not _is_correction(value, marker is not None, head):
            return
        target = _target(value, out, known)
        if target is None:
            return
        new = _corrected(target, value)
        if new is None:
            return
        if out and target is out[-1] and base_predicate(target.predicate) not in SET_VALUED:
            out.pop()  # corrected before it was ever stored
        out.append(new)
        return
    if is_negated(rest) or is_hypothetical(rest):
        return
    out.extend(_clause_facts(rest, confidence, _last_entity(out), bare=bare))


def _last_entity(said: list[Fact]) -> list[str] | None:
    """The chain of the last relative or pet this message spoke about ("… my sister. She lives in Rome")."""
    for f in reversed(said):
        if f.subject.startswith("user's "):
            return f.subject.split("'s ")[1:]
    return None


def _dedupe(facts: list[Fact]) -> list[Fact]:
    """One fact per identity; for a single-valued predicate the last value said wins."""
    seen: dict[tuple[str, str, str], Fact] = {}
    for f in facts:
        base = base_predicate(f.predicate)
        item = f.object.casefold() if base in SET_VALUED else ""
        key = (f.subject.casefold(), base.casefold(), item)
        seen.pop(key, None)
        seen[key] = f
    return list(seen.values())
