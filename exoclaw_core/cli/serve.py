"""``exoclaw serve``: start the gateway; the port opens once everything is loaded."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from .errors import UserError
from .plugins_cmd import split_report

log = logging.getLogger("exoclaw.serve")

BANNER_ECHO = (
    "!! agent {id} uses the offline ECHO provider: replies are echoes, not a model. "
    "Set ANTHROPIC_API_KEY or OPENAI_API_KEY, or configure [agent] provider."
)


def run_serve(args: argparse.Namespace) -> int:
    from ..bootstrap import load_checked, open_runtime

    # a WASM trap would otherwise build a full Rust backtrace (~45 ms) just to be discarded
    os.environ.pop("RUST_BACKTRACE", None)
    overrides = {k: v for k, v in (("bind", args.bind), ("port", args.port)) if v is not None}
    settings, pm = load_checked(args.config, overrides=overrides)
    from ..store.dirlock import DataDirBusy

    from exoclaw_hooks import StoreUnavailable

    try:
        rt = open_runtime(settings, pm, exclusive=True)
    except (DataDirBusy, StoreUnavailable) as exc:
        raise UserError(str(exc)) from None
    return asyncio.run(_serve(rt))


async def _serve(rt) -> int:  # type: ignore[no-untyped-def]
    from ..gateway.app import build_app
    from ..gateway.auth import is_loopback_host
    from ..gateway.listener import listen

    settings = rt.settings
    gw = settings.gateway
    if not gw.token and not is_loopback_host(gw.bind):
        raise UserError(f"refusing to listen on {gw.bind} without a token: set EXOCLAW_TOKEN or [gateway] token")
    app = await build_app(rt)
    try:
        listener = await listen(app, gw)
    except OSError as exc:
        raise UserError(f"cannot listen on {gw.bind}:{gw.port}: {exc.strerror or exc}") from None
    port = listener.port
    # the handlers before the "listening on" line: whoever waits for it may send SIGTERM at once
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    _print_summary(rt, gw.bind, port)
    await stop.wait()
    print("exoclaw: shutting down", file=sys.stderr, flush=True)
    await listener.close()
    log.info("event=stopped")
    return 0


def _print_summary(rt, bind: str, port: int) -> None:  # type: ignore[no-untyped-def]
    s = rt.settings
    host = f"[{bind}]" if ":" in bind else bind
    lines = [f"exoclaw {_version()}"]
    lines.append(f"  config: {s.config_path or 'none (zero-config)'}; data: {s.data_dir}")
    store = rt.store_status()
    if store.get("kind") != "sqlite":  # a shared store: say which (its URL never with the password)
        lines.append(f"  store: {store.get('kind')} {store.get('url', '')}".rstrip())
    lines.append(f"  auth: {'on (token required)' if s.gateway.token else 'off (loopback only)'}")
    lines.append(f"  OpenAI-compatible API: http://{host}:{port}/v1")
    for a in s.agents.values():
        default = " (default)" if a.id == s.default_agent else ""
        fb = f", fallback {a.fallback.provider}/{a.fallback.model}" if a.fallback else ""
        lines.append(f"  agent {a.id}{default}: {a.provider}/{a.model}{fb}")
    hooks = ", ".join(f"{r.name}" for r in rt.pm.records if r.status == "loaded") or "none"
    lines.append(f"  hook plugins: {hooks}")
    for r in rt.pm.records:
        if r.status != "loaded":
            lines.append(f"  hook plugin {r.name}: {r.status}{': ' + r.reason if r.reason else ''}")
    report = rt.plugin_report()
    wasm, groups = split_report(report)
    loaded = [p for p in wasm if p.get("loaded")]
    lines.append("  wasm plugins: " + (", ".join(f"{p['name']} ({p.get('kind')})" for p in loaded) or "none"))
    for p in wasm:
        if not p.get("loaded"):
            lines.append(f"  wasm plugin {p['name']}: not loaded: {p.get('reason', '?')}")
    # entries of other groups (MCP servers …): one line per group, each entry its own summary
    for group, entries in groups.items():
        lines.append(f"  {group}: " + ", ".join(p.get("summary") or p["name"] for p in entries))
    for a in s.agents.values():
        if a.provider == "echo":
            lines.append(BANNER_ECHO.format(id=a.id))
    lines.extend(f"!! {p['warning']}" for p in report if p.get("warning"))
    from ..readiness import missing_keys

    for missing in missing_keys(s, rt.providers):
        log.warning("event=api_key_missing agent=%s provider=%s variable=%s", missing.agent_id, missing.provider,
                    missing.key_env)
        lines.append(f"!! {missing.warning()}")
    url = "" if (bind, port) == ("127.0.0.1", 7200) else f" --url ws://{host}:{port}/ws"
    lines.append(f'  try: exoclaw chat{url} "hello"   (in another terminal)')
    # last, so that whoever waits for this line has the whole summary
    lines.append(f"listening on ws://{host}:{port}/ws (http://{host}:{port})")
    print("\n".join(lines), flush=True)


def _version() -> str:
    from .. import __version__

    return __version__
