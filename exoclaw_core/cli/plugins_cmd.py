"""``exoclaw plugins``: every hook plugin (and where it came from) and every WASM plugin."""

from __future__ import annotations

import argparse
import asyncio


def run_plugins(args: argparse.Namespace) -> int:
    from ..bootstrap import load_checked, open_runtime

    settings, pm = load_checked(args.config)
    rt = open_runtime(settings, pm, memory_store=True)

    async def report() -> list[dict]:
        await rt.start(None)
        try:
            return rt.plugin_report()
        finally:
            await rt.stop(0)
            rt.store.close()

    wasm = asyncio.run(report())
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
    return 0
