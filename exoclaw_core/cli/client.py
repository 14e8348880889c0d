"""``exoclaw chat`` and ``exoclaw status``: a terminal client of the WebSocket protocol."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import itertools
import json
import os
import sys
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .main import UserError

DEFAULT_URL = "ws://127.0.0.1:7200/ws"


def ws_url(url: str | None) -> str:
    """Accept a ws(s):// URL or an http(s)://HOST:PORT base (mapped to its /ws)."""
    url = url or DEFAULT_URL
    parts = urlsplit(url if "://" in url else "ws://" + url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss"):
        raise UserError(f"--url must be a ws://, wss://, http:// or https:// URL (got {url!r})")
    path = parts.path if parts.path not in ("", "/") else "/ws"
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


class Client:
    def __init__(self, url: str | None, token: str | None):
        self.url = ws_url(url)
        self.token = token if token is not None else os.environ.get("EXOCLAW_TOKEN") or None
        self._ids = itertools.count(1)
        self.session: Any = None
        self.ws: Any = None

    async def __aenter__(self) -> "Client":
        import aiohttp

        self.session = aiohttp.ClientSession()
        try:
            self.ws = await self.session.ws_connect(self.url, max_msg_size=0)
        except aiohttp.WSServerHandshakeError as exc:
            await self.session.close()
            raise UserError(f"the gateway at {self.url} refused the connection (HTTP {exc.status})") from None
        except (aiohttp.ClientError, OSError) as exc:
            await self.session.close()
            raise UserError(f"cannot reach the gateway at {self.url}: {_reason(exc)}") from None
        if self.token:
            await self.ws.send_str(json.dumps({"token": self.token}))
        hello = await self._receive()
        if hello.get("error") == "auth_failed":
            raise UserError("authentication failed: check --token or EXOCLAW_TOKEN")
        if not hello.get("ok"):
            raise UserError(f"unexpected greeting from the gateway: {hello}")
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.session is not None:
            await self.session.close()

    async def _receive(self) -> dict[str, Any]:
        import aiohttp

        msg = await self.ws.receive()
        if msg.type == aiohttp.WSMsgType.TEXT:
            return json.loads(msg.data)
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
            if self.ws.close_code == 4001:
                raise UserError("authentication failed: check --token or EXOCLAW_TOKEN")
            raise UserError("the gateway closed the connection")
        raise UserError(f"unexpected frame from the gateway ({msg.type.name})")

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        rid = str(next(self._ids))
        await self.ws.send_str(json.dumps({"id": rid, "method": method, "params": params or {}}))
        while True:
            frame = await self._receive()
            if frame.get("id") not in (rid, "0"):
                continue
            if frame.get("error"):
                raise UserError(frame["error"])
            return frame.get("result")

    async def chat(self, params: dict[str, Any], out: Any = sys.stdout, err: Any = sys.stderr) -> bool:
        """Send one turn and print it as it streams; True when it ended without an error."""
        rid = str(next(self._ids))
        await self.ws.send_str(json.dumps({"id": rid, "method": "chat.send", "params": params}))
        ok = True
        while True:
            frame = await self._receive()
            if frame.get("id") not in (rid, "0"):
                continue
            if "event" not in frame:  # a plain error response (invalid params, no agent)
                print(f"error: {frame.get('error')}", file=err, flush=True)
                return False
            event, data = frame["event"], frame.get("data")
            if event == "text":
                out.write(data)
                out.flush()
            elif event == "tool_use":
                print(f"\n[tool {data['name']} {json.dumps(data['input'], ensure_ascii=False)}]", file=err, flush=True)
            elif event == "tool_result":
                mark = "error" if data.get("is_error") else "result"
                content = data.get("content", "")
                short = content if len(content) <= 200 else content[:200] + "…"
                print(f"[{mark}: {short}]", file=err, flush=True)
            elif event == "usage":
                cost = "unpriced" if data.get("unpriced") else f"${data.get('cost_usd', 0):.6f}"
                out.write("\n")
                out.flush()
                print(f"[{data['input_tokens']} in / {data['output_tokens']} out, {cost}]", file=err, flush=True)
            elif event == "error":
                ok = False
                print(f"\nerror: {data}", file=err, flush=True)
            elif event == "done":
                return ok


def _reason(exc: BaseException) -> str:
    cause = getattr(exc, "os_error", None) or exc.__cause__ or exc
    text = getattr(cause, "strerror", None) or str(cause)
    return text.lower() if text else type(exc).__name__


def _chat_params(args: argparse.Namespace, content: str) -> dict[str, Any]:
    account = args.account or os.environ.get("USER") or _user()
    return {"channel": args.channel, "account": account, "peer": args.peer, "content": content}


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001
        return "local"


def run_chat(args: argparse.Namespace) -> int:
    return asyncio.run(_chat(args))


async def _chat(args: argparse.Namespace) -> int:
    async with Client(args.url, args.token) as client:
        if args.message is not None:
            return 0 if await client.chat(_chat_params(args, args.message)) else 1
        try:
            import readline  # noqa: F401 - line editing and history for input()
        except ImportError:
            pass
        print(f"connected to {client.url}; Ctrl-D to quit", file=sys.stderr)
        failed = False
        loop = asyncio.get_running_loop()
        while True:
            try:
                line = await loop.run_in_executor(None, input, "> ")
            except EOFError:
                print(file=sys.stderr)
                return 1 if failed else 0
            if not line.strip():
                continue
            failed = not await client.chat(_chat_params(args, line)) or failed


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
    for a in s.get("agents", []):
        lines.append(f"agent {a['id']}{' (default)' if a.get('default') else ''}: {a['provider']}/{a['model']}")
    wasm = s.get("wasm_plugins") or []
    lines.append(f"wasm plugins: {s.get('plugins')}" + (": " + ", ".join(p["name"] for p in wasm) if wasm else ""))
    hooks = [h["name"] for h in s.get("hook_plugins", []) if h.get("status") == "loaded"]
    lines.append("hook plugins: " + (", ".join(hooks) or "none"))
    for scope in (s.get("budgets") or {}).get("scopes", []):
        lines.append(f"budget {scope['scope']}: {scope['used']}/{scope['limit']} since {scope.get('period_start')}")
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
