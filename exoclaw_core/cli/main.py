"""``exoclaw``: the command line (SPEC §2). Heavy modules are imported per command."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Sequence

from .. import __version__


class UserError(Exception):
    """A problem the user can fix: printed as one sentence, exit code 1, no traceback."""


def _add_client_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default=None, help="gateway WebSocket URL (default ws://127.0.0.1:7200/ws)")
    p.add_argument("--token", default=None, help="gateway token (default $EXOCLAW_TOKEN)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="exoclaw", description="Exoclaw: a small, safe AI-assistant gateway.")
    parser.add_argument("--version", action="version", version=f"exoclaw {__version__}")
    parser.add_argument("--debug", action="store_true", help="show debug logs and tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    for name in ("serve", "gateway"):
        p = sub.add_parser(name, help="start the gateway" + (" (alias of serve)" if name == "gateway" else ""))
        p.add_argument("--config", default=None, help="config file (default $EXOCLAW_CONFIG or ~/.exoclaw/config.toml)")
        p.add_argument("--bind", default=None, help="address to listen on")
        p.add_argument("--port", type=int, default=None, help="port to listen on (0 = any free port)")

    p = sub.add_parser("chat", help="talk to a running gateway")
    p.add_argument("message", nargs="?", default=None, help="send one message and print the reply")
    _add_client_args(p)
    p.add_argument("--channel", default="cli")
    p.add_argument("--account", default=None, help="default: $USER")
    p.add_argument("--peer", default="main")

    p = sub.add_parser("status", help="status of a running gateway")
    _add_client_args(p)

    p = sub.add_parser("config", help="configuration commands")
    csub = p.add_subparsers(dest="config_command", metavar="SUBCOMMAND")
    c = csub.add_parser("check", help="load and validate the config")
    c.add_argument("--config", default=None)

    p = sub.add_parser("plugins", help="list hook plugins and WASM plugins")
    p.add_argument("--config", default=None)

    p = sub.add_parser("mcp", help="MCP servers")
    msub = p.add_subparsers(dest="mcp_command", metavar="SUBCOMMAND")
    m = msub.add_parser("list", help="the configured MCP servers, their state and tools")
    m.add_argument("--config", default=None)
    m.add_argument("--json", action="store_true", help="print the servers as JSON")

    p = sub.add_parser("usage", help="token and cost report")
    p.add_argument("--session", default=None, help="only this session key")
    p.add_argument("--by", choices=("day", "model", "agent", "session"), default="model")
    p.add_argument("--json", action="store_true", help="print JSON rows")
    return parser


def _command(args: argparse.Namespace) -> Callable[[argparse.Namespace], int]:
    if args.command in ("serve", "gateway"):
        from .serve import run_serve

        return run_serve
    if args.command == "chat":
        from .client import run_chat

        return run_chat
    if args.command == "status":
        from .client import run_status

        return run_status
    if args.command == "config":
        from .config_cmd import run_config

        return run_config
    if args.command == "plugins":
        from .plugins_cmd import run_plugins

        return run_plugins
    if args.command == "mcp":
        from .mcp_cmd import run_mcp

        return run_mcp
    if args.command == "usage":
        from .usage_cmd import run_usage

        return run_usage
    raise AssertionError(args.command)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.command is None or (args.command == "config" and not args.config_command)
            or (args.command == "mcp" and not args.mcp_command)):
        parser.print_help()
        return 2
    debug = args.debug or os.environ.get("EXOCLAW_LOG", "").lower() == "debug"
    from ..logs import setup_logging

    # the gateway logs its events; the other commands only their warnings (unless asked)
    quiet = args.command not in ("serve", "gateway") and not os.environ.get("EXOCLAW_LOG")
    setup_logging("debug" if args.debug else ("warning" if quiet else None))
    try:
        return _command(args)(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - one sentence, never a traceback
        from exoclaw_hooks import ConfigError

        from ..logs import redact

        if debug:
            import traceback

            traceback.print_exc()
        if isinstance(exc, ConfigError):
            for problem in exc.problems:
                print(redact(problem), file=sys.stderr)
        else:
            text = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
            print(f"exoclaw: {redact(text)}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
