"""``exoclaw config check`` and ``exoclaw config example``.

``check`` validates the file (every problem located), then starts the
configured plugins on an in-memory store, as ``serve`` would, and checks what
the values refer to: each agent's provider has its API key, every tool an
agent names is offered, every configured plugin loaded.

``example`` prints the commented example config generated from the settings
the core and every loaded plugin declare (``examples/config.toml`` is its
output).
"""

from __future__ import annotations

import argparse
import asyncio


def run_config(args: argparse.Namespace) -> int:
    if args.config_command in ("example", "schema"):
        print(example_text(builtin_only=getattr(args, "builtin_only", False)), end="")
        return 0
    return check(args.config)


def example_text(builtin_only: bool = False) -> str:
    """The example config for the installed plugins (no config file: every plugin loaded).

    ``builtin_only``: only Exoclaw's own plugins' tables (``examples/config.toml``
    must not depend on what else is installed).
    """
    from ..config import plugin_tables
    from ..config.example import example_config
    from ..config.schema import CORE_TABLES
    from ..config.types import Settings
    from ..plugins import make_plugin_manager

    pm = make_plugin_manager(Settings())
    tables = plugin_tables.collect(pm, reserved=CORE_TABLES)
    if builtin_only:
        tables = {name: owned for name, owned in tables.items() if owned.source == "builtin"}
    return example_config(tables)


def check(config: str | None) -> int:
    from exoclaw_hooks import ConfigError

    from .. import readiness
    from ..bootstrap import load_checked, open_runtime

    settings, pm = load_checked(config)  # ConfigError → every problem printed, exit 1
    rt = open_runtime(settings, pm, memory_store=True)

    async def ready() -> list[str]:
        await rt.start(None)
        try:
            return await readiness.problems(rt)
        finally:
            await rt.stop(0)
            rt.store.close()

    problems = asyncio.run(ready())
    if problems:
        raise ConfigError(problems)
    where = settings.config_path or "no config file (zero-config defaults)"
    counted = [f"{len(settings.agents)} agent(s)", f"{len(pm.loaded_names())} hook plugin(s)"]
    tables = [
        f"[[{name}]] x{len(settings.sections[name])}" if isinstance(settings.sections[name], list) else f"[{name}]"
        for name in settings.sections
    ]
    tools = sorted({t for a in settings.agents.values() for t in (a.tools or ())})
    detail = f"; plugin tables: {', '.join(tables)}" if tables else ""
    detail += f"; tools named: {', '.join(tools)}" if tools else ""
    print(f"{where}: OK — {', '.join(counted)}{detail}")
    return 0
