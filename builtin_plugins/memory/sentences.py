"""Cutting a message into sentences and a sentence into clauses (the extractor's first steps)."""

from __future__ import annotations

import re

CI = re.IGNORECASE
#: longer messages are read up to here (facts are stated in short sentences)
MAX_TEXT = 20_000

# ---------------------------------------------------------------- sentences

_DOT = "\x00"
_ABBREVIATIONS = re.compile(
    r"\b(?:dr|mr|mrs|ms|mx|prof|st|sr|jr|mt|ft|ave|rd|blvd|vs|approx|inc|ltd|corp|jan|feb|mar|apr|"
    r"jun|jul|aug|sep|sept|oct|nov|dec|dept|univ|lt|sgt|capt|rev|ph\.d)\.|\b(?:no|nr|tel|ext|fig)\.(?=\s*\d)",
    CI,
)
_DOTTED = re.compile(r"\b(?:[a-z]\.){2,}", CI)  # e.g. i.e. U.S. a.m. p.m.
_INITIAL = re.compile(r"\b([A-HJ-Z])\.(?=\s+[A-Z])")  # J. R. R. Tolkien (not "I.")
_ETC_MID = re.compile(r"\betc\.(?=\s+[a-z])")  # "etc. and more" goes on; "etc. My dog …" ends
_SPLIT = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\s*\n+\s*|;\s+|(?<=[!?])(?=[A-Z])|\s+-\s+")


_CONTRACTIONS = {
    "im": "I'm", "ive": "I've", "dont": "don't", "doesnt": "doesn't", "didnt": "didn't", "isnt": "isn't",
    "wasnt": "wasn't", "arent": "aren't", "cant": "can't", "havent": "haven't", "hasnt": "hasn't",
    "thats": "that's", "whats": "what's", "wheres": "where's", "theyre": "they're", "youre": "you're",
}
_BARE_CONTRACTION = re.compile(r"\b(?:" + "|".join(_CONTRACTIONS) + r")\b", CI)


def _normalize(text: str) -> str:
    """Typographic quotes and dashes made plain; "im", "dont" … given their apostrophe; "@" read as "at"."""
    table = {"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u201c": '"', "\u201d": '"', "\u00a0": " ",
             "\u2026": "...", "\u2013": " - ", "\u2014": " - "}
    t = "".join(table.get(ch, ch) for ch in text[:MAX_TEXT])
    t = _BARE_CONTRACTION.sub(lambda m: _CONTRACTIONS[m.group(0).lower()], t)
    return re.sub(r"\s@\s", " at ", t)


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text``; abbreviations and initials do not end a sentence."""
    t = _normalize(text)
    t = _ETC_MID.sub("etc" + _DOT, t)
    t = _ABBREVIATIONS.sub(lambda m: m.group(0).replace(".", _DOT), t)
    t = _DOTTED.sub(lambda m: m.group(0).replace(".", _DOT), t)
    t = _INITIAL.sub(lambda m: m.group(1) + _DOT, t)
    parts = _SPLIT.split(t)
    return [p.replace(_DOT, ".").strip() for p in parts if p and p.strip(" .!?")]


# ---------------------------------------------------------------- clauses

_SUBJECT_START = re.compile(
    r"^(?:i|i'm|im|i've|i'd|i'll|my|we|we're|we've|our|me and|he|she|he's|she's|his|her|"
    r"(?:you can |please |just |everyone |people |"
    r"friends |my friends )?calls? me|(?:the )?name's)\b",
    CI,
)
_CORRECTION_START = re.compile(r"^(?:sorry|actually|oops|whoops|i meant|i mean|make that|no wait|wait)\b", CI)
_VERB_START = re.compile(
    r"^(?:live|lives|work|works|love|loves|like|likes|hate|hates|speak|speaks|have|has|own|owns|moved|"
    r"was born|am|grew|prefer|prefers|enjoy|enjoys|study|studies|drive|drives|just|also|recently|currently|"
    r"turned|adore|adores|go by|teach|teaches|can't stand|cannot stand|don't like|suffer|suffers|used to|"
    r"raised|born|brought up)\b",
    CI,
)
_NO_SUBJECT_START = re.compile(r"^(?:just|recently|moved|born|raised|grew up|living|working|been)\b", CI)
_CONJ = re.compile(
    r"\s*,\s*(?:(?:and|but|so|plus|also|though|and also)\s+)?|\s+(?:and|but|plus|while|whereas|so|although|"
    r"though|because|since|and also)\s+",
    CI,
)


def split_clauses(sentence: str) -> list[str]:
    """Cut a sentence where a new statement starts; a list ("sushi, pizza and pasta") stays whole.

    A part that starts with a verb ("… and work as a nurse") or, after a
    copula, with an article ("I'm 34 and a nurse") is given the previous
    clause's subject.
    """
    pieces: list[str] = []
    pos = 0
    separators: list[str] = []
    for m in _CONJ.finditer(sentence):
        pieces.append(sentence[pos:m.start()])
        separators.append(m.group(0))
        pos = m.end()
    pieces.append(sentence[pos:])
    clauses = [pieces[0]]
    for sep, piece in zip(separators, pieces[1:], strict=True):
        p = piece.strip()
        prev = clauses[-1]
        word = sep.strip(" ,").lower()
        has_word = word != ""
        bare_np = re.fullmatch(r"(?:me|i|my\s+[\w-]+)", prev.strip(), CI)  # "me and my husband live …"
        if (_SUBJECT_START.match(p) or _CORRECTION_START.match(p)) and not bare_np:
            clauses.append(p)
            continue
        if not has_word and re.match(r"^like\b", p, CI):  # "…, like a walk": "such as", not a verb
            clauses[-1] = prev + sep + piece
            continue
        subject = _subject_prefix(prev)
        if not subject and _VERB_START.match(p) and _NO_SUBJECT_START.match(prev.strip()):
            clauses.append(p)  # "born in Cairo, raised in London"
        elif subject and _VERB_START.match(p):
            clauses.append(f"{subject} {p}")
        elif subject and re.match(r"^(?:a|an)\s", p, CI) and _copula(prev):
            clauses.append(f"{subject} {_copula(prev)} {p}")  # "I'm Ben, a student", "I'm 34 and a nurse"
        elif has_word and word not in ("and", "plus", "also", "and also"):
            clauses.append(p)  # "…, so no meat please": a new thought, never a list item
        else:
            clauses[-1] = prev + sep + piece
    return [c.strip() for c in clauses if c.strip()]


_SUBJECT_PREFIX = re.compile(
    r"^(?P<s>i|we|my(?:\s+[\w'-]+){1,3}?)(?=\s*(?:'m|'s|'re|'ve)?\s+(?:am|is|are|was|live|lives|work|works|"
    r"love|loves|like|likes|hate|hates|speak|speaks|have|has|own|owns|moved|just|also|really|currently|turned|"
    r"prefer|prefers|enjoy|enjoys|study|studies|drive|drives|grew|can't|don't|go|goes|teach|teaches|"
    r"called|named|\d+|a|an)\b)",
    CI,
)


def _subject_prefix(clause: str) -> str | None:
    m = _SUBJECT_PREFIX.match(clause.strip())
    if m:
        return m["s"]
    m = re.match(r"^(i|we)\s*'(?:m|re|ve)\b", clause.strip(), CI)
    return m.group(1) if m else None


def _copula(clause: str) -> str | None:
    c = clause.strip().lower()
    if re.match(r"^i\s*'?\s*m\b|^i am\b", c):
        return "am"
    if re.match(r"^we(?:'re| are)\b", c):
        return "are"
    if re.match(r"^my\s+[\w' -]+?\s+(?:is|'s)\b|^my\s+[\w-]+'s\s", c):
        return "is"
    return None
