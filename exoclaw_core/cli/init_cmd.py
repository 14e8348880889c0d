"""``exoclaw init``: a first config that works — provider, key reference, bundled tools — then checked.

It writes the commented example generated from the declared settings
(:mod:`exoclaw_core.config.example`) with every example commented out and
only the choices made active: the provider and model, and the bundled WASM
tools (``echo``, and ``kv``'s ``remember``/``recall``). The API key stays in
its environment variable unless the user asks for it to be written (the file
is created readable by its owner only). Then it runs ``config check``.

``--yes`` asks nothing: the provider is the one zero-config would pick
(Anthropic if ``$ANTHROPIC_API_KEY`` is set, else OpenAI if
``$OPENAI_API_KEY`` is set, else the offline echo).
"""

from __future__ import annotations

import argparse
import getpass
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

from .errors import UserError

#: the everyday tools init configures: plugin name -> its capabilities
BUNDLED = {"echo": [], "kv": ["store:kv"]}


def run_init(args: argparse.Namespace) -> int:
    from ..config import plugin_tables
    from ..config.defaults import default_provider
    from ..config.example import example_config
    from ..config.schema import CORE_TABLES
    from ..config.types import Settings
    from ..plugins import collect_providers, make_plugin_manager

    ask = Asker(interactive=not args.yes)
    path = target(args.config)
    if path.exists() and not args.force and not ask.yes_no(f"{path} exists: overwrite it?", False):
        raise UserError(f"{path} exists: pass --force to overwrite it (or --config for another file)")
    pm = make_plugin_manager(Settings())
    providers = collect_providers(pm)
    detected = default_provider(os.environ, providers)

    names = sorted(providers, key=lambda n: (providers[n].auto is None, providers[n].auto or 0, n))
    provider = args.provider or ask.choice("Provider", names, detected)
    info = providers.get(provider)
    if info is None:
        raise UserError(f"unknown provider {provider!r}: must be one of {', '.join(providers)}")
    agent: dict[str, Any] = {"provider": provider}
    model = args.model or ask.text("Model", info.default_model or "")
    if model:
        agent["model"] = model
    base_url = args.base_url
    if base_url is None and provider not in ("echo",):
        base_url = ask.text("Base URL (Enter for the provider's own; e.g. a local server http://127.0.0.1:8080/v1)", "")
    if base_url:
        agent["base_url"] = base_url
    note = _key(ask, info.key_env, agent)

    values: dict[str, Any] = {"agent": agent}
    tools, tools_note = bundled_tools()
    if tools:
        values["plugins"] = tools
    text = example_config(plugin_tables.collect(pm, reserved=CORE_TABLES), values)
    write_private(path, text)
    print(f"wrote {path}", file=sys.stderr)
    for line in (note, tools_note):
        if line:
            print(line, file=sys.stderr)

    from exoclaw_hooks import ConfigError

    from .config_cmd import check

    flag = "" if path == target(None) else f" --config {path}"
    try:
        check(str(path))
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"fix the above, then: exoclaw config check{flag}", file=sys.stderr)
        return 1
    print(f"next: exoclaw serve{flag}   (then, in another terminal: exoclaw chat \"hello\")", file=sys.stderr)
    return 0


def target(config: str | None) -> Path:
    """The file to write: ``--config``, else ``$EXOCLAW_CONFIG``, else ``~/.exoclaw/config.toml`` (what serve reads)."""
    from ..config.defaults import env_value, expand_user

    given = config or env_value(os.environ, "EXOCLAW_CONFIG") or "~/.exoclaw/config.toml"
    return Path(expand_user(given, os.environ)).absolute()


def _key(ask: "Asker", key_env: str | None, agent: dict[str, Any]) -> str:
    """Where the API key comes from; asks for it when it is not in the environment. Returns a note."""
    if not key_env:
        return ""
    if os.environ.get(key_env):
        return f"the API key is read from ${key_env} (set in this environment; it is not written to the file)"
    if not ask.interactive:
        return f"set ${key_env} before `exoclaw serve`: the API key is read from it"
    key = ask.secret(f"API key for {agent['provider']} (Enter to set ${key_env} yourself later)")
    if not key:
        return f"set ${key_env} before `exoclaw serve`: the API key is read from it"
    if ask.yes_no(f"Write the key into the config file? (else: export {key_env}=… in your shell)", False):
        agent["api_key"] = key
        return "the API key is in the config file (readable by you only); $" + key_env + " would win over it"
    return f"not written anywhere: `export {key_env}=<your key>` before `exoclaw serve`"


def bundled_tools() -> tuple[list[dict[str, Any]], str]:
    """``[[plugins]]`` entries for the bundled everyday tools, and a note on how they were found."""
    found = wasm_dir()
    if found is None:
        return [], ("no bundled WASM tools found (from a source checkout: `python wasm_plugins/build.py`); "
                    "the agent runs without tools")
    where, built = found
    entries = [{"name": name, "path": str(where / f"{name}.wasm"), "capabilities": caps}
               for name, caps in BUNDLED.items() if (where / f"{name}.wasm").is_file()]
    note = f"bundled tools {'built' if built else 'found'} in {where}: " + ", ".join(e["name"] for e in entries)
    return entries, note


def wasm_dir() -> tuple[Path, bool] | None:
    """Where the bundled tool modules are: ``$EXOCLAW_WASM_DIR``, the wheel's copies, or a source
    checkout's ``wasm_plugins/build`` (built first when missing). ``(dir, just built)``."""
    wanted = [f"{name}.wasm" for name in BUNDLED]

    def complete(d: Path) -> bool:
        return all((d / w).is_file() for w in wanted)

    override = os.environ.get("EXOCLAW_WASM_DIR")
    if override:
        d = Path(override).expanduser()
        return (d, False) if complete(d) else None
    package = Path(__file__).resolve().parents[1] / "wasm"  # the wheel's copies (package data), when shipped
    if complete(package):
        return package, False
    checkout = Path(__file__).resolve().parents[2] / "wasm_plugins"
    if (checkout / "build.py").is_file():
        build = checkout / "build"
        if complete(build):
            return build, False
        result = subprocess.run([sys.executable, str(checkout / "build.py")], capture_output=True, text=True)
        if result.returncode == 0 and complete(build):
            return build, True
    return None


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (parents made), readable and writable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, 0o600)


class Asker:
    """Questions on the terminal; with ``--yes`` every answer is its default."""

    def __init__(self, interactive: bool, read: Callable[[str], str] = input):
        self.interactive = interactive
        self.read = read

    def text(self, question: str, default: str) -> str:
        if not self.interactive:
            return default
        shown = f" [{default}]" if default else ""
        try:
            answer = self.read(f"{question}{shown}: ").strip()
        except EOFError:
            answer = ""
        return answer or default

    def choice(self, question: str, options: list[str], default: str) -> str:
        while True:
            answer = self.text(f"{question} ({', '.join(options)})", default)
            if answer in options or not self.interactive:
                return answer
            print(f"  one of: {', '.join(options)}", file=sys.stderr)

    def yes_no(self, question: str, default: bool) -> bool:
        answer = self.text(f"{question} (y/n)", "y" if default else "n").lower()
        return answer.startswith("y")

    def secret(self, question: str) -> str:
        if not self.interactive:
            return ""
        try:
            if sys.stdin.isatty():
                return getpass.getpass(f"{question}: ").strip()
            return self.read(f"{question}: ").strip()
        except EOFError:
            return ""
