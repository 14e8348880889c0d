"""``exoclaw memory list|forget``: what the gateway remembers about a person, and retiring a fact."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from .client import Client, local_account


async def session_key(client: Client, args: argparse.Namespace) -> str:
    """``--session KEY``, else the key ``exoclaw chat`` with the same ``--channel``/``--account``/``--peer``
    talks in (with ``--agent``, else the gateway's default agent)."""
    if args.session:
        return args.session
    from exoclaw_hooks import make_session_key

    agent = args.agent
    if agent is None:
        status = await client.call("status")
        agent = next((a["id"] for a in status.get("agents", []) if a.get("default")), "default")
    return make_session_key(agent, args.channel, args.account or local_account(), args.peer)


def run_memory(args: argparse.Namespace) -> int:
    return asyncio.run(_memory(args))


async def _memory(args: argparse.Namespace) -> int:
    async with Client(args.url, args.token) as client:
        session = await session_key(client, args)
        if args.memory_command == "forget":
            fact = await client.call("memory.forget", {"session": session, "id": args.id})
            print(f"forgotten: #{fact['id']} {fact['text']} (kept in the history)")
            return 0
        facts: list[dict[str, Any]] = await client.call(
            "memory.list", {"session": session, "include_superseded": args.all})
    if args.json:
        print(json.dumps(facts, ensure_ascii=False, indent=2))
        return 0
    if not facts:
        print("nothing remembered about this person")
        return 0
    for f in facts:
        gone = f" (replaced {f['superseded_at'][:10]})" if f.get("superseded_at") else ""
        print(f"#{f['id']:<6} {f['learned_at'][:10]}  {f['text']}{gone}")
    return 0


def add_parser(sub: Any, client_args: Any, common: Any) -> None:
    p = sub.add_parser("memory", help="what the gateway remembers about a person", parents=[common])
    msub = p.add_subparsers(dest="memory_command", metavar="SUBCOMMAND")
    for name, help_text in (("list", "the facts remembered about the person"),
                            ("forget", "retire a fact (superseded; its history is kept)")):
        m = msub.add_parser(name, help=help_text, parents=[common])
        client_args(m)
        m.add_argument("--session", default=None, help="a session key agent:channel:account:peer")
        m.add_argument("--agent", default=None, help="default: the gateway's default agent")
        m.add_argument("--channel", default="cli")
        m.add_argument("--account", default=None, help="default: $USER")
        m.add_argument("--peer", default="main")
        if name == "list":
            m.add_argument("--all", action="store_true", help="also what was replaced or forgotten")
            m.add_argument("--json", action="store_true")
        else:
            m.add_argument("id", type=int, help="the fact's id (memory list shows them)")
