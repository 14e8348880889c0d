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


def estimate_tokens(text: str, chars_per_token: float = CHARS_PER_TOKEN) -> int:
    """Tokens ``text`` may take: Latin characters / ``chars_per_token`` (rounded up) + one per dense character."""
    if not text:
        return 0
    if text.isascii():
        return int(-(-len(text) // chars_per_token))
    dense = len(_DENSE.findall(text))
    latin = len(text) - dense
    return dense + (int(-(-latin // chars_per_token)) if latin else 0)
