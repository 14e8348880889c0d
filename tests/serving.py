"""Shared by the tests that run a real ``exoclaw serve`` (or another CLI command) as a subprocess."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

EXE = [sys.executable, "-m", "exoclaw_core.cli.main"]


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EXOCLAW_", "ANTHROPIC_", "OPENAI_"))}
    env.update(HOME=str(tmp_path), EXOCLAW_HOME=str(tmp_path / "home"), PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


class Served:
    def __init__(self, proc: subprocess.Popen, port: int, banner: str):
        self.proc, self.port, self.banner = proc, port, banner

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"


def start_serve(tmp_path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 30) -> Served:
    proc = subprocess.Popen(
        [*EXE, "serve", "--port", "0", *args], env=env or clean_env(tmp_path),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(r"listening on ws://[^:]+:(\d+)/ws", line)
        if m:
            # read the rest of the banner without blocking forever
            banner = "".join(lines)
            return Served(proc, int(m.group(1)), banner)
    proc.kill()
    out, err = proc.communicate()
    raise AssertionError(f"serve did not start: {''.join(lines)}{out}\n{err}")


def run_cli(tmp_path: Path, *args: str, env=None, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([*EXE, *args], env=env or clean_env(tmp_path), capture_output=True, text=True, timeout=timeout)


def stop(served: Served, sig=signal.SIGTERM, timeout: float = 10) -> tuple[int, str, str]:
    served.proc.send_signal(sig)
    out, err = served.proc.communicate(timeout=timeout)
    return served.proc.returncode, out, err


def readme_block(command: str) -> list[str]:
    """The lines the README shows after ``$ <command>`` (an indented block)."""
    lines = (Path(__file__).resolve().parents[1] / "README.md").read_text().splitlines()
    start = lines.index(f"    $ {command}") + 1
    block = []
    for line in lines[start:]:
        if line and not line.startswith("    "):
            break
        block.append(line[4:])
    while block and not block[-1]:
        block.pop()
    return block



async def shared_session_load(
    urls, *, clients: int, turns: int, sessions: int, channel: str = "load", account: str = "acct",
    on_ack=None, pick=None, timeout: float = 60.0,
):
    """``clients`` clients, each sending ``turns`` messages one after another (the next once the previous
    one ended) to gateways chosen by ``pick(urls)`` (default: at random), client i in session ``s{i % sessions}``.

    A message's content is ``c<client>-<n>``. Returns ``(acked, failed)``: lists of ``(client, n)`` whose turn
    ended with ``done`` and no error, and the others (an error, or a connection that broke). ``on_ack(count)``
    is called after each acknowledgement (to do something mid-load); ``urls`` may be a callable (the live ones).
    """
    import asyncio
    import random

    import aiohttp

    from exoclaw_hooks.testing.gateway import Reply, WSClient

    acked: list[tuple[int, int]] = []
    failed: list[tuple[int, int]] = []
    choose = pick or random.choice

    async def client(i: int, http: aiohttp.ClientSession) -> None:
        for n in range(turns):
            url = choose(urls() if callable(urls) else urls)
            params = {"channel": channel, "account": account, "peer": f"s{i % sessions}", "content": f"c{i}-{n}"}
            try:
                async with http.ws_connect(url) as ws:
                    c = WSClient(ws)
                    c.hello = await c.recv()
                    reply = Reply(await c.chat(params, timeout=timeout))
            except Exception:  # noqa: BLE001 - a gateway killed under it: not acknowledged
                failed.append((i, n))
                continue
            if reply.done:
                acked.append((i, n))
                if on_ack is not None:
                    await on_ack(len(acked))
            else:
                failed.append((i, n))

    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(client(i, http) for i in range(clients)))
    return acked, failed
