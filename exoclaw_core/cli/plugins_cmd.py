"""``exoclaw plugins``: every hook plugin (and where it came from) and every WASM plugin."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any


def split_report(entries: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """``plugin_report`` entries: the WASM plugins, and the other groups (``"group"``: MCP servers …) by name."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for p in entries:
        if p.get("group"):
            groups.setdefault(p["group"], []).append(p)
    return [p for p in entries if not p.get("group")], groups


def gather_report(config: str | None) -> tuple[list[dict[str, Any]], Any]:
    """Start the plugins as ``serve`` would (no port, an in-memory store): their reports, and the plugin manager."""
    from ..bootstrap import load_checked, open_runtime

    settings, pm = load_checked(config)
    rt = open_runtime(settings, pm, memory_store=True)

    async def report() -> list[dict[str, Any]]:
        await rt.start(None)
        try:
            return rt.plugin_report()
        finally:
            await rt.stop(0)
            rt.store.close()

    return asyncio.run(report()), pm


def run_plugins(args: argparse.Namespace) -> int:
    entries, pm = gather_report(args.config)
    wasm, groups = split_report(entries)
    print("hook plugins:")
    for r in pm.records:
        extra = f" — {r.reason}" if r.reason else ""
        print(f"  {r.name:<20} {r.status:<9} {r.source}{extra}")
    print("wasm plugins:" + ("" if wasm else " none configured"))
    for p in wasm:
        state = "loaded" if p.get("loaded") else f"NOT LOADED — {p.get('reason', '?')}"
        print(f"  {p['name']:<20} {p.get('kind') or '?':<8} {state}")
        if p.get("tools"):
            print(f"      tools: {', '.join(p['tools'])}")
        print(f"      capabilities: {', '.join(p.get('capabilities') or []) or 'none'}")
        if p.get("not_granted"):
            print(f"      asked for but not granted: {', '.join(p['not_granted'])}")
        if p.get("path"):
            print(f"      path: {p['path']}")
    for group, members in groups.items():  # other things plugins manage (MCP servers: exoclaw mcp list)
        print(f"{group}:")
        for p in members:
            print(f"  {p.get('summary') or p['name']}")
            if p.get("tools"):
                print(f"      tools: {', '.join(p['tools'])}")
            if p.get("warning"):
                print(f"      !! {p['warning']}")
    return 0
