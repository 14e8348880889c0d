"""``exoclaw``: the command line (SPEC §2). Heavy modules are imported per command."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Sequence

from .. import __version__
from .errors import UserError

__all__ = ["UserError", "build_parser", "main"]


def _add_client_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default=None, help="gateway WebSocket URL (default ws://127.0.0.1:7200/ws)")
    p.add_argument("--token", default=None, help="gateway token (default $EXOCLAW_TOKEN)")


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, help="config file (default $EXOCLAW_CONFIG or ~/.exoclaw/config.toml)")


def build_parser() -> argparse.ArgumentParser:
    # global flags are accepted before the command and after it (`exoclaw serve --debug`);
    # SUPPRESS keeps a subcommand's absent flag from undoing the one given before it
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show debug logs and tracebacks")
    parser = argparse.ArgumentParser(prog="exoclaw", description="Exoclaw: a small, safe AI-assistant gateway.")
    parser.add_argument("--version", action="version", version=f"exoclaw {__version__}")
    parser.add_argument("--debug", action="store_true", default=False, help="show debug logs and tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, parents=[common])

    for name in ("serve", "gateway"):
        p = command(name, "start the gateway" + (" (alias of serve)" if name == "gateway" else ""))
        _config_arg(p)
        p.add_argument("--bind", default=None, help="address to listen on")
        p.add_argument("--port", type=int, default=None, help="port to listen on (0 = any free port)")

    p = command("init", "write a commented config, pick a provider, get the bundled tools ready")
    _config_arg(p)
    p.add_argument("--yes", "-y", action="store_true", help="ask nothing: detect the provider from the environment")
    p.add_argument("--provider", default=None, help="anthropic, openai, echo, or another registered provider")
    p.add_argument("--model", default=None, help="model id (default: the provider's)")
    p.add_argument("--base-url", default=None, help="the provider's endpoint (e.g. a local OpenAI-compatible server)")
    p.add_argument("--force", action="store_true", help="overwrite an existing config file")

    p = command("chat", "talk to a running gateway")
    p.add_argument("message", nargs="?", default=None, help="send one message and print the reply")
    _add_client_args(p)
    p.add_argument("--agent", default=None, help="the agent to talk to (default: the one the bindings pick)")
    p.add_argument("--channel", default="cli")
    p.add_argument("--account", default=None, help="default: $USER")
    p.add_argument("--peer", default="main")

    p = command("status", "status of a running gateway")
    _add_client_args(p)

    p = command("config", "configuration commands")
    csub = p.add_subparsers(dest="config_command", metavar="SUBCOMMAND")
    c = csub.add_parser("check", help="load and validate the config: keys, tools, every problem listed",
                        parents=[common])
    _config_arg(c)
    for name in ("example", "schema"):
        e = csub.add_parser(name, parents=[common], help="print the commented example config generated from the "
                            "declared settings" + (" (alias of example)" if name == "schema" else ""))
        e.add_argument("--builtin-only", action="store_true", help="only Exoclaw's own plugins' tables")

    p = command("plugins", "list hook plugins and WASM plugins")
    _config_arg(p)

    from .memory_cmd import add_parser as add_memory_parser

    add_memory_parser(sub, _add_client_args, common)

    p = command("mcp", "MCP servers")
    msub = p.add_subparsers(dest="mcp_command", metavar="SUBCOMMAND")
    m = msub.add_parser("list", help="the configured MCP servers, their state and tools", parents=[common])
    _config_arg(m)
    m.add_argument("--json", action="store_true", help="print the servers as JSON")

    p = command("usage", "token and cost report")
    _config_arg(p)
    p.add_argument("--session", default=None, help="only this session key")
    p.add_argument("--by", choices=("day", "model", "agent", "session"), default="model")
    p.add_argument("--json", action="store_true", help="print JSON rows")
    p.add_argument("--context", action="store_true",
                   help="what each turn's context was made of: tokens by section (soul, window, recall, facts …)")
    p.add_argument("--limit", type=int, default=20, help="with --context: the last N turns (default 20)")
    p.add_argument("--budgets", action="store_true",
                   help="every budget scope's use and limit (tokens and USD) this period, per person too")
    return parser


COMMANDS = {
    "serve": ("serve", "run_serve"),
    "gateway": ("serve", "run_serve"),
    "init": ("init_cmd", "run_init"),
    "chat": ("chat", "run_chat"),
    "status": ("status_cmd", "run_status"),
    "config": ("config_cmd", "run_config"),
    "plugins": ("plugins_cmd", "run_plugins"),
    "usage": ("usage_cmd", "run_usage"),
    "memory": ("memory_cmd", "run_memory"),
    "mcp": ("mcp_cmd", "run_mcp"),
}


def _command(args: argparse.Namespace) -> Callable[[argparse.Namespace], int]:
    import importlib

    module, function = COMMANDS[args.command]
    return getattr(importlib.import_module(f"{__package__}.{module}"), function)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.command is None or (args.command == "config" and not args.config_command)
            or (args.command == "memory" and not args.memory_command)
            or (args.command == "mcp" and not args.mcp_command)):
        parser.print_help()
        return 2
    debug = args.debug or os.environ.get("EXOCLAW_LOG", "").lower() == "debug"
    from ..logs import setup_logging

    # the gateway logs its events; the other commands only their warnings (unless asked)
    quiet = args.command not in ("serve", "gateway") and not os.environ.get("EXOCLAW_LOG")
    setup_logging("debug" if debug else ("warning" if quiet else None))
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
