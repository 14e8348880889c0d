"""Text at the edges: every string a client supplies is proper Unicode (issue 16).

JSON lets a client write a lone surrogate (``"\\ud800"``), which Python
decodes into a ``str`` that no UTF-8 encoder accepts; aiohttp decodes header
bytes that are not UTF-8 into the same lone surrogates (``surrogateescape``).
Such a string passes every type check and fails much later — in the store,
after the paid upstream call (no turn stored, no usage row). So the gateway
checks every string where it enters — a frame's id, method and params, the
OpenAI face's body and ``X-Exoclaw-Peer``, a channel plugin's parsed message —
and answers with a clear error before anything runs. In text that becomes a
turn (a message's identity and content) NUL is refused too (``nul=True``):
nobody means it, and PostgreSQL's ``text`` cannot hold it; elsewhere (a
search query) it is just a character.

Characters that are valid but unsafe to print (ESC, other controls) are
allowed here; the log formatter escapes them (``exoclaw_core.logs``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def problem(text: str, *, nul: bool = False) -> str | None:
    """Why ``text`` is refused (the part after ``<field>: ``), or ``None``; ``nul``: NUL is refused too."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            return (f"must be valid Unicode text (lone surrogate U+{ord(text[exc.start]):04X} "
                    f"at character {exc.start})")
    if nul and "\x00" in text:
        return f"must not contain NUL characters (at character {text.index(chr(0))})"
    return None


def find_bad(value: Any, path: str = "") -> tuple[str, str] | None:
    """The first refused string in a JSON value, keys included: ``(path, problem)``, or ``None``.

    ``path`` names where ``value`` sits (``""`` for the top, which is then
    the path returned for it); members are joined with ``.``, array items
    written ``[i]``. Iterative, so any nesting ``json.loads`` accepted is
    walked without recursion.
    """
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            why = problem(item)
            if why is not None:
                return where, why
        elif isinstance(item, Mapping):
            members = []
            for key, sub in item.items():
                why = problem(key) if isinstance(key, str) else None
                if why is not None:
                    return where, f"a member name {why}"
                members.append((f"{where}.{key}" if where else str(key), sub))
            stack.extend(reversed(members))  # popped in document order
        elif isinstance(item, (list, tuple)):
            stack.extend(reversed([(f"{where}[{i}]", sub) for i, sub in enumerate(item)]))
    return None


def may_hold_escapes(raw: str | bytes) -> bool:
    """Whether JSON text can decode to a refused string: only a ``\\u`` escape can make one.

    (Raw bytes that are not UTF-8 fail to decode, and JSON forbids raw control
    characters in strings.) The cheap test that spares most frames the walk.
    """
    return ("\\u" if isinstance(raw, str) else b"\\u") in raw
