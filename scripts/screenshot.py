#!/usr/bin/env python3
"""The README's chat-UI walkthrough, run for real, ending in a screenshot taken by headless Chromium.

    python scripts/screenshot.py [--out docs/chat-ui.png] [--chromium PATH] [--dump-dom FILE]

1. starts ``exoclaw serve`` (offline: the echo provider, the bundled ``echo``
   and ``kv`` tools from ``wasm_plugins/build``) on a free loopback port, with
   a throw-away data directory;
2. serves ``docs/chat-ui/`` (a minimal OpenAI-compatible chat page) with
   ``python -m http.server`` on another loopback port;
3. opens the page in headless Chromium, which sends two messages through the
   gateway's ``/v1/chat/completions`` (streamed) — a plain one and one whose
   answer comes from a WASM tool; once the page says it is done (driven over
   the DevTools protocol, so the streams have really ended) the screenshot is
   taken; ``--dump-dom`` also writes the page as rendered, so a test can read
   what it shows.

Needs Chromium (Debian: ``apt-get install -y chromium``). Exit code 0 when the
screenshot was written; the gateway and the page server are always stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "chat-ui"
ASK = ["Hello Exoclaw! What can you do?", '/tool echo {"text": "a tool ran inside the WASM sandbox"}']
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--no-first-run", "--hide-scrollbars", "--window-size=1000,640", "--remote-debugging-port=0"]
WIDTH, HEIGHT = 1000, 640
CONFIG = """\
[agent]
provider = "echo"
options = {{ chunk_delay_s = 0.01 }}
[[plugins]]
name = "echo"
path = "{build}/echo.wasm"
[[plugins]]
name = "kv"
path = "{build}/kv.wasm"
capabilities = ["store:kv"]
"""


def find_chromium(given: str | None = None) -> str | None:
    if given:
        return given
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gateway(home: Path) -> tuple[subprocess.Popen, int]:
    build = REPO / "wasm_plugins" / "build"
    if not (build / "echo.wasm").is_file():
        subprocess.run([sys.executable, str(REPO / "wasm_plugins" / "build.py")], check=True)
    config = home / "config.toml"
    config.write_text(CONFIG.format(build=build))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EXOCLAW_", "ANTHROPIC_", "OPENAI_"))}
    env.update(EXOCLAW_HOME=str(home / "data"), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "exoclaw_core.cli.main", "serve", "--config", str(config),
                             "--port", "0"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        m = re.search(r"listening on ws://[^:]+:(\d+)/ws", line)
        if m:
            return proc, int(m.group(1))
    proc.kill()
    raise SystemExit("exoclaw serve did not start")


def serve_page(port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(PAGE),
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the page server did not start")


def page_url(page_port: int, gateway_port: int, ask: list[str]) -> str:
    query = urllib.parse.urlencode([("gateway", f"http://127.0.0.1:{gateway_port}"), *(("ask", a) for a in ask)])
    return f"http://127.0.0.1:{page_port}/index.html?{query}"


class DevTools:
    """Just enough of the Chrome DevTools protocol: one page, commands answered by id."""

    def __init__(self, ws):  # type: ignore[no-untyped-def]
        self.ws = ws
        self.ids = itertools.count(1)

    async def call(self, method: str, **params):  # type: ignore[no-untyped-def]
        rid = next(self.ids)
        await self.ws.send_str(json.dumps({"id": rid, "method": method, "params": params}))
        while True:
            msg = json.loads((await self.ws.receive(timeout=60)).data)
            if msg.get("id") == rid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    async def evaluate(self, expression: str):  # type: ignore[no-untyped-def]
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")


async def capture(chromium: str, url: str, profile: Path, out: Path, dom_out: str | None) -> None:
    import aiohttp

    proc = await asyncio.create_subprocess_exec(
        chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        endpoint = None
        while endpoint is None:
            line = (await asyncio.wait_for(proc.stderr.readline(), 60)).decode(errors="replace")
            if not line:
                raise SystemExit("chromium exited before opening its DevTools port")
            m = re.search(r"DevTools listening on (ws://\S+)", line)
            endpoint = m and m.group(1)
        port = urllib.parse.urlsplit(endpoint).port
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as r:
                target = next(t for t in await r.json() if t.get("type") == "page")
            async with session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                page = DevTools(ws)
                await page.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT,
                                deviceScaleFactor=1, mobile=False)
                await page.call("Page.navigate", url=url)
                deadline = time.monotonic() + 60
                while await page.evaluate("document.body && document.body.dataset.ready") != "true":
                    if time.monotonic() > deadline:
                        raise SystemExit("the page never finished its messages")
                    await asyncio.sleep(0.1)
                shot = await page.call("Page.captureScreenshot", format="png")
                out.write_bytes(base64.b64decode(shot["data"]))
                if dom_out:
                    Path(dom_out).write_text(await page.evaluate("document.documentElement.outerHTML"))
    finally:
        proc.terminate()
        await proc.wait()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(REPO / "docs" / "chat-ui.png"), help="where to write the PNG")
    ap.add_argument("--chromium", default=None, help="the browser binary (default: chromium on $PATH)")
    ap.add_argument("--dump-dom", default=None, help="also write the rendered page's HTML here")
    args = ap.parse_args(argv)
    chromium = find_chromium(args.chromium)
    if chromium is None:
        print("chromium not found: apt-get install -y chromium (or pass --chromium PATH)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="exoclaw-shot-") as tmp:
        gateway, gateway_port = start_gateway(Path(tmp))
        page_port = free_port()
        page = serve_page(page_port)
        try:
            out = Path(args.out).resolve()
            out.parent.mkdir(parents=True, exist_ok=True)
            url = page_url(page_port, gateway_port, ASK)
            asyncio.run(capture(chromium, url, Path(tmp) / "profile", out, args.dump_dom))
            print(f"wrote {out}")
            return 0
        finally:
            for proc in (page, gateway):
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()


if __name__ == "__main__":
    sys.exit(main())
