"""``exoclaw chat``: one turn, or an interactive loop whose commands never reach the model.

The connection lives on an event loop in a background thread; the prompt is
read by the main thread with plain ``input()`` (line editing from
``readline``). So Ctrl-C is an ordinary ``KeyboardInterrupt`` where the user
is: at the prompt it drops the line being typed and prompts again (no thread
left reading the next line), during a reply it sends ``chat.cancel`` — the
gateway stops generating, stores nothing — and the prompt comes back.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import secrets
import sys
import threading
import time
from typing import Any, Awaitable, TypeVar

from .client import Client, local_account
from .errors import UserError

T = TypeVar("T")

HELP = """\
commands (handled here, never sent to the model):
  /help           this help
  /new            a new session (a fresh peer): the conversation starts over
  /agent [NAME]   talk to agent NAME; without NAME, list the agents
  /quit, exit     leave (Ctrl-D too)
Ctrl-C stops the reply in flight (the gateway stops generating and stores
nothing of it) and keeps the prompt. `/tool NAME {json}` is sent as it is
(the echo provider's tool call); start a line with // to send it with one /."""

QUIT = frozenset({"/quit", "/exit", "/q", "exit", "quit"})
#: a first word starting with "/" that still goes to the model
PASSED = frozenset({"/tool"})


class LoopThread:
    """An asyncio loop in a daemon thread; the main thread waits on its futures (Ctrl-C interrupts the wait)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="exoclaw-chat", daemon=True)
        self.thread.start()

    def submit(self, coro: Awaitable[T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]

    def run(self, coro: Awaitable[T]) -> T:
        return self.submit(coro).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        if not self.thread.is_alive():
            self.loop.close()


class Conversation:
    """Who we are to the gateway (channel, account, peer) and which agent we ask."""

    def __init__(self, args: argparse.Namespace):
        self.channel = args.channel
        self.account = args.account or local_account()
        self.peer = args.peer
        self.agent: str | None = args.agent

    def params(self, content: str) -> dict[str, Any]:
        params = {"channel": self.channel, "account": self.account, "peer": self.peer, "content": content}
        if self.agent:
            params["agent"] = self.agent
        return params


def run_chat(args: argparse.Namespace) -> int:
    loop = LoopThread()
    client = Client(args.url, args.token)
    try:
        loop.run(client.__aenter__())
        try:
            conv = Conversation(args)
            if conv.agent:
                _check_agent(loop, client, conv.agent)
            if args.message is not None:
                outcome = turn(loop, client, conv.params(args.message))
                return {"ok": 0, "failed": 1, "cancelled": 130}[outcome]
            return interactive(loop, client, conv)
        finally:
            try:
                loop.submit(client.close()).result(timeout=5)
            except (Exception, KeyboardInterrupt):  # noqa: BLE001 - leaving anyway
                pass
    finally:
        loop.stop()


def turn(loop: LoopThread, client: Client, params: dict[str, Any]) -> str:
    """One streamed turn: ``"ok"``, ``"failed"``, or ``"cancelled"`` (Ctrl-C: the gateway was told to stop)."""
    rid = client.new_id()
    pending = loop.submit(client.chat(params, rid))
    try:
        return "ok" if pending.result().ok else "failed"
    except KeyboardInterrupt:
        pass
    print("\n^C", file=sys.stderr, flush=True)
    cancelled = loop.run(client.cancel(rid))
    result = pending.result()  # the stream's end: its error ("turn cancelled by the client") and done
    if cancelled:
        return "cancelled"
    return "ok" if result.ok else "failed"  # it had ended (or was being stored) already


def interactive(loop: LoopThread, client: Client, conv: Conversation) -> int:
    try:
        import readline  # noqa: F401 - line editing and history for input()
    except ImportError:
        pass
    who = f" (agent {conv.agent})" if conv.agent else ""
    print(f"connected to {client.url}{who}; /help for commands, Ctrl-D to quit", file=sys.stderr, flush=True)
    failed = False
    while True:
        try:
            line = input(f"{conv.agent}> " if conv.agent else "> ")
        except EOFError:
            print(file=sys.stderr)
            break
        except KeyboardInterrupt:  # drop the line being typed, prompt again
            print(file=sys.stderr)
            continue
        text = line.strip()
        if not text:
            continue
        if text.startswith("//"):
            line = line.lstrip()[1:]
        elif text.lower() in QUIT:
            break
        elif text.startswith("/") and text.split()[0] not in PASSED:
            command(loop, client, conv, text)
            continue
        failed = turn(loop, client, conv.params(line)) == "failed" or failed
    return 1 if failed else 0


def command(loop: LoopThread, client: Client, conv: Conversation, text: str) -> None:
    """A local command: answered here, nothing is sent to the model."""
    name, _, arg = text.partition(" ")
    arg = arg.strip()
    if name in ("/help", "/?"):
        print(HELP, file=sys.stderr, flush=True)
    elif name == "/new":
        conv.peer = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)
        print(f"new session: peer {conv.peer}", file=sys.stderr, flush=True)
    elif name == "/agent":
        if not arg:
            agents = _agents(loop, client)
            for agent in agents:
                mark = "*" if agent["id"] == conv.agent or (conv.agent is None and agent.get("default")) else " "
                tail = " (default)" if agent.get("default") else ""
                print(f" {mark} {agent['id']}: {agent.get('provider')}/{agent.get('model')}{tail}",
                      file=sys.stderr, flush=True)
            return
        try:
            _check_agent(loop, client, arg)
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            return
        conv.agent = arg
        print(f"talking to agent {arg}", file=sys.stderr, flush=True)
    else:
        print(f"unknown command {name}: /help lists them (start with // to send a line beginning with /)",
              file=sys.stderr, flush=True)


def _agents(loop: LoopThread, client: Client) -> list[dict[str, Any]]:
    status = loop.run(client.call("status"))
    return list(status.get("agents") or []) if isinstance(status, dict) else []


def _check_agent(loop: LoopThread, client: Client, name: str) -> None:
    ids = [a["id"] for a in _agents(loop, client)]
    if ids and name not in ids:
        raise UserError(f"no agent named {name!r} on this gateway (agents: {', '.join(ids)})")
