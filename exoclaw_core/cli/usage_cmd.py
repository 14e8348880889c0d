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

    if getattr(args, "budgets", False):
        return _budgets(args)
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


def _budgets(args: argparse.Namespace) -> int:
    """``--budgets``: the ``budget.status`` of the configured budgets (every person's included), read
    from the data directory's records by the plugins the config loads, without starting a gateway."""
    from ..bootstrap import load_checked, open_runtime

    settings, pm = load_checked(getattr(args, "config", None))
    rt = open_runtime(settings, pm)

    async def read() -> list[dict[str, Any]]:
        try:
            rt.register_plugins()
            method = rt.methods.get("budget.status")
            if method is None:
                raise UserError("no budgets: no loaded plugin answers budget.status (is metering disabled?)")
            return (await method({"people": True}))["scopes"]
        finally:
            await rt.store.aclose()  # in the loop that used it (a pooled store's connections belong to it)

    scopes = asyncio.run(read())
    if args.json:
        print(json.dumps(scopes, indent=2))
        return 0
    print(format_budgets(scopes))
    return 0


def format_budgets(scopes: list[dict]) -> str:
    """One line per scope (and person): used, limit, share, period."""
    if not scopes:
        return "no budgets configured"
    rows = [("scope", "person", "used", "limit", "share", "since")]
    for s in scopes:
        usd = s.get("unit") == "usd"
        used, limit = s["used"], s["limit"]
        cell = (lambda v: f"${v:,.4f}") if usd else (lambda v: f"{v:,}")
        share = f"{used / limit:.0%}" if limit else "-"
        rows.append((s["scope"], s.get("person") or "", cell(used), cell(limit), share,
                     s.get("period_start") or "(session's life)"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(widths[i]) if i in (0, 1, 5) else c.rjust(widths[i]) for i, c in enumerate(r)).rstrip()
        for r in rows
    )
