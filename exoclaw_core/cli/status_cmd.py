"""``exoclaw status``: the gateway's ``status`` RPC, printed readably."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from .client import Client


def run_status(args: argparse.Namespace) -> int:
    return asyncio.run(_status(args))


async def _status(args: argparse.Namespace) -> int:
    async with Client(args.url, args.token) as client:
        status = await client.call("status")
    print(format_status(status))
    return 0


def format_status(s: dict[str, Any]) -> str:
    lines = [
        f"exoclaw {s.get('version')}  up {_duration(s.get('uptime_s', 0))}",
        f"sessions: {s.get('sessions')}   connections: {s.get('connections', '?')}   "
        f"turns in flight: {s.get('turns_in_flight', '?')}",
    ]
    store = s.get("store")
    if isinstance(store, dict):
        lines.append(f"store: {store.get('kind')} {store.get('url', '')}".rstrip())
    for a in s.get("agents", []):
        lines.append(f"agent {a['id']}{' (default)' if a.get('default') else ''}: {a['provider']}/{a['model']}")
    wasm = s.get("wasm_plugins") or []
    lines.append(f"wasm plugins: {s.get('plugins')}" + (": " + ", ".join(p["name"] for p in wasm) if wasm else ""))
    hooks = [h["name"] for h in s.get("hook_plugins", []) if h.get("status") == "loaded"]
    lines.append("hook plugins: " + (", ".join(hooks) or "none"))
    for scope in (s.get("budgets") or {}).get("scopes", []):
        if scope.get("unit") == "usd":
            figures = f"${scope['used']:,.2f} of ${scope['limit']:,.2f}"
        else:
            figures = f"{scope['used']}/{scope['limit']}"
        lines.append(f"budget {scope['scope']}: {figures} since {scope.get('period_start')}")
    deliveries = s.get("deliveries")
    if deliveries:
        lines.append("channel deliveries: " + ", ".join(f"{k} {v}" for k, v in sorted(deliveries.items())))
    for m in s.get("mcp_servers") or []:  # the mcp plugin's status_info
        tools = len(m.get("tools") or [])
        state = f"{m.get('state')}: {m['reason']}" if m.get("reason") else f"{m.get('state')}, {tools} tool{'s' * (tools != 1)}"
        lines.append(f"mcp server {m.get('name')} ({m.get('transport')}{', UNSANDBOXED' if m.get('unsandboxed') else ''}): {state}")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"
