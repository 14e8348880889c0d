"""exoclaw-audit: every turn appended to a JSON-lines file — an example Exoclaw hook plugin.

Configure it in Exoclaw's config file; it owns the ``[audit]`` table::

    [audit]
    path = "~/.exoclaw/audit.jsonl"   # required
    include_text = false              # also write what was said (default: only sizes)

It also answers the WebSocket method ``audit.count`` (turns written since start-up).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import dataclass
from typing import Any, Mapping

from exoclaw_hooks import CompletedTurn, ConfigContext, SettingsTable, hookimpl
from exoclaw_hooks.config import Bool, Section, Str

log = logging.getLogger("exoclaw.audit")


class AuditSettings(Section):
    path = Str(required=True, metadata={"doc": "The JSON-lines file each turn is appended to (required).",
                                        "example": "~/.exoclaw/audit.jsonl"})
    include_text = Bool(metadata={"doc": "Also write what was said (default: sizes only).", "example": False})


@dataclass(frozen=True)
class AuditConfig:
    path: str
    include_text: bool = False


def build(data: Mapping[str, Any], context: ConfigContext) -> AuditConfig | None:
    if not data:
        return None  # no [audit] table: the plugin stays idle
    return AuditConfig(context.resolve_path(data["path"]), data.get("include_text", False))


class AuditPlugin:
    def __init__(self) -> None:
        self.config: AuditConfig | None = None
        self.count = 0

    @hookimpl
    def register_settings(self, register):
        register(SettingsTable("audit", AuditSettings, apply=self.configure, build=build,
                               doc="exoclaw-audit: every turn appended to a JSON-lines file."))

    def configure(self, config: AuditConfig | None) -> None:
        self.config = config

    @hookimpl
    def register_methods(self, register, host):
        async def audit_count(params: dict[str, Any]) -> int:
            return self.count

        register("audit.count", audit_count)

    @hookimpl
    async def after_turn(self, turn: CompletedTurn) -> None:
        if self.config is None:
            return
        entry: dict[str, Any] = {
            "at": turn.turn.created_at, "session": turn.route.session_key, "agent": turn.agent.id,
            "said_chars": len(turn.message.content), "reply_chars": len(turn.reply), "tokens": turn.usage.total,
        }
        if self.config.include_text:
            entry.update(said=turn.message.content, reply=turn.reply)
        await asyncio.to_thread(self._append, json.dumps(entry, ensure_ascii=False))
        self.count += 1

    def _append(self, line: str) -> None:
        os.makedirs(os.path.dirname(self.config.path) or ".", exist_ok=True)  # type: ignore[union-attr]
        with open(self.config.path, "a", encoding="utf-8") as f:  # type: ignore[union-attr]
            f.write(line + "\n")
