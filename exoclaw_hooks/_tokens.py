"""One token estimate for everything that counts tokens before a provider does (SPEC §8, §9).

Meant never to under-count: a character of a script that tokenizers cut
finely — CJK, kana, hangul, emoji and other symbols, any letter outside the
Latin ranges — counts as a whole token; Latin text (with its punctuation)
counts ``chars_per_token`` characters a token (4 unless a caller has learnt
a tighter figure for a model). Plain ASCII takes the fast path.
"""

from __future__ import annotations

import re

#: characters counted by the Latin ratio: Basic Latin, Latin-1, Latin Extended A/B, general punctuation
_DENSE = re.compile(r"[^\x00-\u024f\u2000-\u206f]")
CHARS_PER_TOKEN = 4.0


def count_chars(text: str) -> tuple[int, int]:
    """``(latin, dense)``: the characters of ``text`` counted by the Latin ratio, and those counted one token each."""
    if text.isascii():
        return len(text), 0
    dense = len(_DENSE.findall(text))
    return len(text) - dense, dense


def estimate_tokens(text: str, chars_per_token: float = CHARS_PER_TOKEN) -> int:
    """Tokens ``text`` may take: Latin characters / ``chars_per_token`` (rounded up) + one per dense character."""
    if not text:
        return 0
    latin, dense = count_chars(text)
    return dense + (int(-(-latin // chars_per_token)) if latin else 0)
