"""What the mcp plugin's tests share: a ``/tool`` turn, the plugin's offers and report, waiting for a change."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any

from tests.harness import events_of


def chat(content: str, account: str = "alice") -> dict[str, str]:
    return {"channel": "t", "account": account, "content": content}


def results_of(frames: list[dict]) -> list[dict]:
    return [f["data"] for f in frames if f.get("event") == "tool_result"]


async def call(client: Any, tool: str, args: dict | None = None, account: str = "alice") -> dict:
    """One ``/tool`` turn; its only tool result."""
    frames = await client.chat(chat(f"/tool {tool} {json.dumps(args or {})}", account))
    assert events_of(frames)[-1] == "done" and "error" not in events_of(frames), frames
    (result,) = results_of(frames)
    return result


def offered(gw: Any, agent: str = "default") -> list[str]:
    return sorted(s.name for s in gw.rt.pm.get_plugin("mcp").list_tools(gw.rt.agents[agent]))


def report(gw: Any, name: str = "t") -> dict:
    return {p["name"]: p for p in gw.rt.plugin_report()}[name]


async def eventually(check: Any, what: str, timeout: float = 15.0) -> None:
    """Wait for ``check()`` to hold (a server's change reaches us asynchronously)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        await asyncio.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
