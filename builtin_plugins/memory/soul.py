"""The soul: the agent's personality/instructions file (``soul_path``), always first in the context.

The file is read once and cached per path; every turn costs one ``stat``
(cheap, on the event loop) and the file is read again — in a thread — only
when its modification time or size changed. Its token estimate is computed
once per load. A missing file is ONE warning (again only after it had
reappeared and vanished anew), not one per turn; an unreadable one (a
directory, no permission, not UTF-8) likewise. Without a soul the agent
simply runs with its system prompt.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from typing import Any

from exoclaw_hooks import ContextPart, hookimpl

log = logging.getLogger("exoclaw.memory")

SOURCE = "memory-soul"
CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class Soul:
    path: str
    text: str
    tokens: int
    mtime_ns: int
    size: int


def _read(path: str) -> tuple[str, int, int]:
    """The file's text with the mtime and size of exactly what was read (blocking)."""
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        data = f.read()
    return data.decode("utf-8-sig"), st.st_mtime_ns, st.st_size


class SoulPlugin:
    """``memory-soul``: contributes ``ContextPart(kind="soul")`` from ``agent.soul_path``."""

    def __init__(self) -> None:
        self._cache: dict[str, Soul] = {}
        self._warned: dict[str, str] = {}  # path -> the problem already reported
        #: how many times a file was actually read (tests, and a sanity check of the cache)
        self.loads = 0

    @hookimpl
    async def assemble_context(self, request: Any) -> list[ContextPart] | None:
        path = request.agent.soul_path
        if not path:
            return None
        soul = await self.load(path)
        if soul is None or not soul.text:
            return []
        return [ContextPart(kind="soul", text=soul.text, tokens=soul.tokens, source=SOURCE)]

    async def load(self, path: str) -> Soul | None:
        """The soul at ``path``, from the cache unless the file changed; ``None`` (warned once) if unusable."""
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return self._problem(path, "missing", "not found")
        except OSError as exc:
            return self._problem(path, "unreadable", exc.strerror or type(exc).__name__)
        cached = self._cache.get(path)
        if cached is not None and cached.mtime_ns == st.st_mtime_ns and cached.size == st.st_size:
            return cached
        try:
            text, mtime_ns, size = await asyncio.to_thread(_read, path)
        except FileNotFoundError:
            return self._problem(path, "missing", "not found")
        except OSError as exc:
            return self._problem(path, "unreadable", exc.strerror or type(exc).__name__)
        except UnicodeDecodeError:
            return self._problem(path, "unreadable", "not UTF-8 text")
        text = text.strip()
        soul = Soul(path, text, -(-len(text) // CHARS_PER_TOKEN), mtime_ns, size)
        self.loads += 1
        self._cache[path] = soul
        if self._warned.pop(path, None) is not None or cached is not None:
            log.info("event=soul_loaded path=%s tokens=%d", path, soul.tokens)
        return soul

    def _problem(self, path: str, kind: str, reason: str) -> None:
        """Forget the cached soul and warn — once for as long as the problem stays the same."""
        self._cache.pop(path, None)
        if self._warned.get(path) != f"{kind}: {reason}":
            self._warned[path] = f"{kind}: {reason}"
            log.warning("event=soul_%s path=%s error=%s (the agent runs without its soul)", kind, path, reason)
        return None
