"""``exoclaw config check``: load and validate the config, every problem listed."""

from __future__ import annotations

import argparse


def run_config(args: argparse.Namespace) -> int:
    from ..bootstrap import load_checked

    settings, pm = load_checked(args.config)  # ConfigError → every problem printed, exit 1
    where = settings.config_path or "no config file (zero-config defaults)"
    print(
        f"{where}: OK — {len(settings.agents)} agent(s), {len(settings.plugins)} WASM plugin(s), "
        f"{len(settings.bindings)} binding(s), {len(pm.loaded_names())} hook plugin(s)"
    )
    return 0
