"""``exoclaw config check``: load and validate the config, every problem listed."""

from __future__ import annotations

import argparse


def run_config(args: argparse.Namespace) -> int:
    from ..bootstrap import load_checked

    settings, pm = load_checked(args.config)  # ConfigError → every problem printed, exit 1
    where = settings.config_path or "no config file (zero-config defaults)"
    counted = [f"{len(settings.agents)} agent(s)", f"{len(pm.loaded_names())} hook plugin(s)"]
    tables = [
        f"[[{name}]] x{len(settings.sections[name])}" if isinstance(settings.sections[name], list) else f"[{name}]"
        for name in settings.sections
    ]
    print(f"{where}: OK — {', '.join(counted)}" + (f"; plugin tables: {', '.join(tables)}" if tables else ""))
    return 0
