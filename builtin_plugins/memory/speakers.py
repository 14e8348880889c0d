"""Who is speaking in a message: the prefixes channels and people put before what they say.

A group chat delivers ``Caroline: I moved to Berlin`` (the account is the
group, the speaker is in the text); a bridge may add a time stamp,
``[1:56 pm on 8 May, 2023] Caroline: …``; people number or label their own
messages, ``turn 5: remember that …``, ``Note: …``, ``PS: …``.
:func:`split_prefix` peels those off and says whose words the rest are —
``None`` for the person themself. It only ever removes a prefix it
recognises: ``My favourite foods: pizza`` is kept whole.
"""

from __future__ import annotations

import re

#: a bracketed stamp with a digit in it: ``[1:56 pm on 8 May, 2023]``, ``[10:32]``, ``[2023-05-08]``
_STAMP = re.compile(r"^\s*\[(?=[^\]\n]{0,60}\d)[^\]\n]{1,60}\]\s*")
#: ``Label: rest`` with a short label and a space after the colon (not ``http://``, not ``10:30``)
_LABELLED = re.compile(r"^\s*(?P<label>[^\s:][^:\n]{0,39}?)\s*:\s+(?=\S)")
#: labels that say nothing about who speaks: ``turn 5``, ``Note``, ``PS``, ``msg #12``, ``Day 3``
_LABEL_WORDS = (
    r"turn|message|msg|day|note|notes|update|reminder|ps|p\.s\.|edit|fyi|btw|important|remember|info|context|"
    r"todo|re|fact|fun fact|quick note|side note|heads up|memo|entry|log|step|item|point|q|question"
)
_GENERIC = re.compile(rf"^(?:{_LABEL_WORDS})(?:\s*#?\s*\d+)?\.?$", re.IGNORECASE)
#: the person themself, as transcripts write it
_SELF = re.compile(r"^(?:me|user|human|i|myself)$", re.IGNORECASE)
#: a name: one to three capitalised words (a title like "Dr." allowed), no digits
_NAME = re.compile(r"^(?:(?:Dr|Mr|Mrs|Ms|Mx|Prof)\.?\s+)?[A-Z][\w'’-]*(?:\s+[A-Z][\w'’-]*){0,2}$")
#: capitalised words that begin a sentence, never a speaker's name
_NOT_SPEAKERS = frozenset(
    """my our your his her their its the a an this that these those it i we you he she they there here what
    which who why how when where note update reminder warning important question answer summary edit
    assistant bot system ai yes no ok okay also and but so well good bad great fun news""".split()
)


def split_prefix(text: str) -> tuple[str | None, str]:
    """``(speaker, what they said)``; ``speaker`` is ``None`` when the words are the person's own.

    >>> split_prefix("[1:56 pm on 8 May, 2023] Caroline: I went to a support group")
    ('Caroline', 'I went to a support group')
    >>> split_prefix("turn 5: remember that my dog's name is Luna")
    (None, "remember that my dog's name is Luna")
    >>> split_prefix("My favourite foods: pizza and sushi")
    (None, 'My favourite foods: pizza and sushi')
    """
    speaker: str | None = None
    rest = text
    for _ in range(4):
        stamp = _STAMP.match(rest)
        if stamp and stamp.end() < len(rest):
            rest = rest[stamp.end():]
            continue
        labelled = _LABELLED.match(rest)
        if not labelled:
            break
        label = labelled["label"].strip()
        if _GENERIC.match(label) or _SELF.match(label):
            rest = rest[labelled.end():]
            continue
        if speaker is None and _is_name(label):
            speaker = label
            rest = rest[labelled.end():]
            continue
        break
    return speaker, rest


def _is_name(label: str) -> bool:
    return bool(_NAME.match(label)) and label.split()[0].lower().rstrip(".") not in _NOT_SPEAKERS
