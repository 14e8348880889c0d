"""``exoclaw mcp list``: the configured MCP servers, their state, and their tools granted and available.

The servers are connected as ``serve`` would connect them (each within its
``connect_timeout_ms``), asked for their tools, and disconnected. What is
printed comes from the ``mcp`` plugin's ``plugin_report`` entries
(``kind = "mcp"``); nothing here knows the plugin otherwise.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from .main import UserError


def run_mcp(args: argparse.Namespace) -> int:
    from .plugins_cmd import gather_report

    entries, pm = gather_report(args.config)
    servers = [e for e in entries if e.get("kind") == "mcp"]
    if args.json:
        print(json.dumps(servers, indent=2))
        return 0
    if not servers:
        if "mcp" not in pm.loaded_names():
            raise UserError("the mcp plugin is not loaded (see [hooks] disable)")
        print("no MCP servers configured (add [[mcp]] entries to the config)")
        return 0
    print("\n".join(format_server(s) for s in servers))
    return 0


def format_server(s: dict[str, Any]) -> str:
    state = s.get("state", "?")
    if s.get("reason"):
        state += f": {s['reason']}"
        if s.get("retry_in_s") is not None:
            state += f" (retrying in {s['retry_in_s']:g} s)"
    elif s.get("protocol"):
        state += f" (protocol {s['protocol']})"
    lines = [f"{s['name']}  {s.get('transport', '?')}  {s.get('path', '')}", f"    state:        {state}"]
    if s.get("unsandboxed"):
        lines.append("    !! a local command, run UNSANDBOXED with the gateway's rights")
    granted = s.get("granted")
    lines.append("    granted:      " + ("* (every tool it lists)" if granted == "*" else ", ".join(granted or []) or "none"))
    lines.append("    offered:      " + (", ".join(s.get("tools") or []) or "none"))
    if s.get("state") == "up":
        lines.append("    not granted:  " + (", ".join(s.get("not_granted") or []) or "none"))
    if s.get("missing"):
        lines.append("    granted but not listed by the server: " + ", ".join(s["missing"]))
    for name, why in (s.get("skipped") or {}).items():
        lines.append(f"    skipped (malformed): {name}: {why}")
    for name, why in (s.get("refused") or {}).items():
        lines.append(f"    refused: {name}: {why}")
    return "\n".join(lines)
