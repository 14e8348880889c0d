"""``exoclaw usage``: tokens and cost from the metering records: the data directory's, or the shared store's.

With ``$EXOCLAW_STORE_URL`` or ``[store] url`` in the config, the records are
read from that store (every gateway's, the shared figures); else from the
SQLite file in the data directory, without loading any plugin.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from .main import UserError


def run_usage(args: argparse.Namespace) -> int:
    from ..config.load import data_dir
    from ..store.sqlite import open_store

    store = _shared_store(getattr(args, "config", None))
    if store is None:
        home = data_dir()
        if not (Path(home) / "exoclaw.db").exists():
            raise UserError(f"no usage recorded yet: {home}/exoclaw.db does not exist (is EXOCLAW_HOME right?)")
        store = open_store(Path(home))
    context = getattr(args, "context", False)

    async def read() -> list[dict[str, Any]]:
        try:
            if context:
                return await store.turn_contexts(args.session, args.limit)
            return await store.usage_report(args.by, args.session)
        finally:
            await store.aclose()  # in the loop that used it (a pooled store's connections belong to it)

    rows = asyncio.run(read())
    if context:
        return _contexts(rows, args.json)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(format_table(rows, args.by, args.session))
    return 0


def _shared_store(config: str | None) -> Any:
    """The store ``$EXOCLAW_STORE_URL`` / ``[store] url`` names, opened by its plugin; ``None`` for SQLite."""
    import os
    import tomllib

    from exoclaw_hooks import StoreUnavailable

    from ..config.load import resolve_config_path

    configured = bool(os.environ.get("EXOCLAW_STORE_URL"))
    if not configured:
        path, _ = resolve_config_path(config)
        try:
            table = tomllib.loads(path.read_text("utf-8")).get("store") if path else None
        except (OSError, ValueError):
            table = None  # the full load below reports a broken file; without a url it is not needed
        configured = isinstance(table, dict) and bool(table.get("url"))
    if not configured:
        return None
    from ..bootstrap import load_checked, open_store_url

    settings, pm = load_checked(config)
    try:
        return open_store_url(settings, pm)
    except StoreUnavailable as exc:
        raise UserError(str(exc)) from None


def format_table(rows: list[dict], by: str, session: str | None = None) -> str:
    if not rows:
        return "no usage recorded" + (f" for session {session}" if session else "")
    header = (by, "calls", "input", "output", "cost (USD)")
    body = [
        (str(r["group"]), str(r["calls"]), f"{r['input_tokens']:,}", f"{r['output_tokens']:,}",
         cost_cell(r["cost_usd"], r["calls"], r.get("unpriced_calls", 0)))
        for r in rows
    ]
    total = (
        "total",
        str(sum(r["calls"] for r in rows)),
        f"{sum(r['input_tokens'] for r in rows):,}",
        f"{sum(r['output_tokens'] for r in rows):,}",
        cost_cell(sum(r["cost_usd"] for r in rows), sum(r["calls"] for r in rows),
                  sum(r.get("unpriced_calls", 0) for r in rows)),
    )
    widths = [max(len(row[i]) for row in [header, *body, total]) for i in range(5)]

    def fmt(row: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row))

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(header), rule, *map(fmt, body), rule, fmt(total)])


def cost_cell(cost: float, calls: int, unpriced: int) -> str:
    """``0.0123``; ``unpriced`` when no call had a price; ``0.0123 + 2 unpriced`` when some had none."""
    if unpriced and unpriced >= calls:
        return "unpriced"
    if unpriced:
        return f"{cost:.4f} + {unpriced} unpriced"
    return f"{cost:.4f}"


def _contexts(rows: list[dict], as_json: bool) -> int:
    """``--context``: what each turn's context was made of, in tokens by section (newest first)."""
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no turn with a recorded context")
        return 0
    sections = list(dict.fromkeys(k for r in rows for k in r["context"]))
    header = ("turn", *sections, "total")
    body = [
        (f"{r['session']} #{r['seq']}", *(f"{r['context'].get(k, 0):,}" for k in sections),
         f"{sum(r['context'].values()):,}")
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    for row in [header, *body]:
        print("  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)))
    return 0
