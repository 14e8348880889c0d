"""A real MCP server, built with the official ``mcp`` SDK, for the tests and benches of the MCP plugin.

Run it as a process (``python -m tests.fakes.mcp_server --transport
streamable-http``); it binds 127.0.0.1 on a free port and prints
``listening on PORT`` once it accepts connections (``--transport stdio``
speaks on stdin/stdout instead). From a test::

    with running_mcp_server() as server:               # a subprocess
        server.url                                     # http://127.0.0.1:PORT/mcp

Tools:

* ``echo {text}`` → the text; ``add {a, b}`` → the sum.
* ``fail {message}`` → an error result (``isError``) carrying the message.
* ``hang {seconds}`` → sleeps (default an hour): the slow or hung server.
* ``huge {size}`` → ``size`` bytes of text (10 MB answers).
* ``env {name}`` → the value of environment variable ``name`` in the server
  process, or ``<unset>`` (what a stdio server was given).
* ``grow {name}`` → adds a tool ``name`` (an echo) and tells listening
  clients the tool list changed; ``shrink {name}`` removes it.
* ``garble`` → the HTTP answer to this call is not JSON at all;
  ``rpc_error`` → a JSON-RPC error (-32603) instead of a result.

``--malformed`` adds tools whose listed schemas are broken (``bad_schema``:
a string for an input schema; ``bad_type``: a root type that is not an
object; ``bad_props``: ``properties`` that is not an object) next to the
good ones. ``--token T`` refuses requests without ``Authorization: Bearer T``.
``--require-header NAME=VALUE`` likewise for any header.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

ROOT = Path(__file__).resolve().parents[2]

MALFORMED = [
    {"name": "bad_schema", "description": "broken", "inputSchema": "not a schema"},
    {"name": "bad_type", "description": "broken", "inputSchema": {"type": "string"}},
    {"name": "bad_props", "description": "broken", "inputSchema": {"type": "object", "properties": 5}},
]


def build_server(malformed: bool = False) -> Any:
    middleware = [_MalformedListing()] if malformed else []
    server = MCPServer("exoclaw-test", middleware=middleware, log_level="WARNING")

    @server.tool(description="Echo the text back.")
    def echo(text: str) -> str:
        return text

    @server.tool(description="Add two integers.")
    def add(a: int, b: int) -> int:
        return a + b

    @server.tool(description="Always fails.")
    def fail(message: str = "it broke") -> str:
        raise ToolError(message)

    @server.tool(description="Sleep (a hung server).")
    async def hang(seconds: float = 3600.0) -> str:
        await asyncio.sleep(seconds)
        return "woke up"

    @server.tool(description="A very large answer.", structured_output=False)
    def huge(size: int = 10_000_000) -> str:
        return "x" * size

    @server.tool(description="An environment variable of the server process.")
    def env(name: str) -> str:
        return os.environ.get(name, "<unset>")

    @server.tool(description="Answers with something that is not JSON.")
    def garble() -> str:
        return "never sent"

    @server.tool(description="Answered with a JSON-RPC error instead of a result.")
    def rpc_error() -> str:
        return "never sent"

    @server.tool(description="Add an echo tool named NAME.")
    async def grow(name: str, ctx: Context) -> str:
        def added(text: str) -> str:
            return f"{name}: {text}"

        server.add_tool(added, name=name, description=f"Added at run time ({name}).")
        await _notify_changed(ctx)
        return f"added {name}"

    @server.tool(description="Remove the tool named NAME.")
    async def shrink(name: str, ctx: Context) -> str:
        server.remove_tool(name)
        await _notify_changed(ctx)
        return f"removed {name}"

    return server


async def _notify_changed(ctx: Any) -> None:
    await ctx.notify_tools_changed()  # 2026-07-28 clients listening
    with contextlib.suppress(Exception):  # handshake-era clients get the notification on their session
        await ctx.request_context.session.send_tool_list_changed()


class _MalformedListing:
    """Server middleware: ``tools/list`` answers carry three broken tools next to the good ones."""

    async def __call__(self, ctx: Any, call_next: Any) -> Any:
        result = await call_next(ctx)
        if getattr(ctx, "method", None) != "tools/list" or result is None:
            return result
        data = result.model_dump(by_alias=True, mode="json", exclude_none=True) if hasattr(result, "model_dump") else dict(result)
        data["tools"] = list(data.get("tools", [])) + MALFORMED
        return data


class _Gate:
    """ASGI middleware: the ``garble`` call gets a non-JSON body; headers required by the command line."""

    def __init__(self, app: Any, required: dict[str, str]):
        self.app, self.required = app, {k.lower().encode(): v.encode() for k, v in required.items()}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        for name, value in self.required.items():
            if headers.get(name) != value:
                return await _respond(send, 401, b'{"error": "unauthorized"}')
        if scope["method"] != "POST":
            return await self.app(scope, receive, send)
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if b'"tools/call"' in body and b'"garble"' in body:
            return await _respond(send, 200, b"this is { not json")
        if b'"tools/call"' in body and b'"rpc_error"' in body:
            request_id = json.loads(body).get("id")
            error = {"jsonrpc": "2.0", "id": request_id, "error": {"code": -32603, "message": "internal trouble\nline 2"}}
            return await _respond(send, 200, json.dumps(error).encode())
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


async def _respond(send: Any, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transport", choices=("streamable-http", "sse", "stdio"), default="streamable-http")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--json-response", action="store_true", help="answer POSTs with JSON, not SSE")
    parser.add_argument("--malformed", action="store_true")
    parser.add_argument("--token", default=None)
    parser.add_argument("--require-header", action="append", default=[])
    args = parser.parse_args(argv)
    server = build_server(malformed=args.malformed)
    if args.transport == "stdio":
        server.run("stdio")
        return
    required = dict(h.split("=", 1) for h in args.require_header)
    if args.token:
        required["Authorization"] = f"Bearer {args.token}"
    if args.transport == "sse":
        app = server.sse_app()
    else:
        app = server.streamable_http_app(json_response=args.json_response)
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # accepted sockets inherit it (else 40 ms stalls)
    sock.bind(("127.0.0.1", args.port))
    # open streams (a client's listen stream) must not hold up a stop for long
    config = uvicorn.Config(_Gate(app, required), log_level="warning", lifespan="on", timeout_graceful_shutdown=0.5)
    uv = uvicorn.Server(config)

    sock.listen(512)  # connections made before uvicorn runs wait in the backlog
    print(f"listening on {sock.getsockname()[1]}", flush=True)
    asyncio.run(uv.serve(sockets=[sock]))


# ---------------------------------------------------------------- for tests and benches


@dataclass
class RunningMCPServer:
    process: subprocess.Popen
    port: int
    transport: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{'sse' if self.transport == 'sse' else 'mcp'}"

    def entry(self, name: str = "t", **kw: Any) -> dict[str, Any]:
        """An ``[[mcp]]`` entry for this server, as TOML gives it."""
        extra = {"transport": "sse"} if self.transport == "sse" else {}
        return {"name": name, "url": self.url, **extra, **kw}


def stdio_command(*extra: str) -> list[str]:
    """The stdio server's command line; run it with ``cwd=ROOT`` (it is imported as ``tests.fakes.mcp_server``)."""
    return [sys.executable, "-m", "tests.fakes.mcp_server", "--transport", "stdio", *extra]


@contextlib.contextmanager
def running_mcp_server(*extra: str, transport: str = "streamable-http", port: int = 0) -> Iterator[RunningMCPServer]:
    """The server as a subprocess on 127.0.0.1 (a free port unless ``port``), stopped on exit."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.mcp_server", "--transport", transport, "--port", str(port), *extra],
        stdout=subprocess.PIPE, cwd=str(ROOT), env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith(b"listening on "):
            raise RuntimeError(f"the MCP test server did not start: {line!r}")
        yield RunningMCPServer(proc, int(line.split()[-1]), transport)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
