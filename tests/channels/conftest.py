"""Shared pieces of the channel tests: the built WASM modules, a fake platform, webhook helpers.

* ``wasm_build`` — the Zig plugins, built once per session (re-exposed).
* :class:`FakePlatform` — a fake Telegram Bot API (or any webhook-reply
  target) on loopback, run in its own thread with its own event loop, so
  the same fake serves an in-process gateway and an ``exoclaw serve``
  subprocess. It records every request (method, path, query, headers, raw
  body, JSON) and answers with the next status of a script (200 when the
  script is exhausted), in the Bot API's response shape.
* :func:`telegram_update` — a real-looking Telegram ``Update``.
* :class:`Serve` — a real ``exoclaw serve`` subprocess (log to a file) and
  :func:`write_config` — its config: echo provider, the telegram plugin.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from tests.core.cli.test_serve import EXE, run_cli
from tests.harness import WSClient
from tests.wasm_plugins.conftest import wasm_build  # noqa: F401 - re-exposed session fixture

TOKEN = "7012345678:AAH-fake-bot-token-Zx9qW3eRt5yU"
WEBHOOK_SECRET = "tg-webhook-secret-4b1d9e"
HEADER = "X-Telegram-Bot-Api-Secret-Token"


def telegram_update(update_id: int = 10001, *, chat_id: int = -100123, from_id: int = 4242,
                    text: str | None = "hello bot") -> dict[str, Any]:
    """A Bot API Update as Telegram posts it (``text`` ``None``: a sticker, no text)."""
    message: dict[str, Any] = {
        "message_id": 5,
        "from": {"id": from_id, "is_bot": False, "first_name": "Ana"},
        "chat": {"id": chat_id, "type": "group"},
        "date": 1700000000,
    }
    if text is None:
        message["sticker"] = {"file_id": "CAACAgIAAxkBAAEBc2Rl", "width": 512, "height": 512, "emoji": "👍"}
    else:
        message["text"] = text
    return {"update_id": update_id, "message": message}


class FakePlatform:
    """A fake platform API on ``127.0.0.1:<port>``, in a background thread."""

    def __init__(self, statuses: Iterable[int | tuple[int, str]] = ()):
        #: the answers to the next requests: a status, or (status, its Retry-After header); then 200s
        self.statuses = list(statuses)
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        with self._lock:
            self.received.append({
                "method": request.method, "path": request.path, "query": request.query_string,
                "headers": dict(request.headers), "raw": raw, "json": body,
            })
            status = self.statuses.pop(0) if self.statuses else 200
        status, headers = status if isinstance(status, tuple) else (status, None)
        headers = {"Retry-After": headers} if headers else None
        if status < 300:
            return web.json_response({"ok": True, "result": {"message_id": 1000 + len(self.received)}})
        return web.json_response({"ok": False, "error_code": status, "description": "fake platform refusal"},
                                 status=status, headers=headers)

    def start(self) -> FakePlatform:
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                app = web.Application()
                app.router.add_route("*", "/{tail:.*}", self._handle)
                self._runner = web.AppRunner(app)
                loop.run_until_complete(self._runner.setup())
                site = web.TCPSite(self._runner, "127.0.0.1", 0)
                loop.run_until_complete(site.start())
                self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            except BaseException as exc:  # noqa: BLE001
                failure.append(exc)
                started.set()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-platform", daemon=True)
        self._thread.start()
        started.wait(10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> FakePlatform:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def count(self) -> int:
        with self._lock:
            return len(self.received)

    def wait_sync(self, n: int = 1, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count() >= n:
                return True
            time.sleep(0.02)
        return self.count() >= n

    async def wait(self, n: int = 1, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count() >= n:
                return True
            await asyncio.sleep(0.02)
        return self.count() >= n


class Serve:
    """``exoclaw serve --port 0``; stderr (the log) goes to a file so it can never fill a pipe."""

    def __init__(self, tmp_path: Path, config: Path, env: dict[str, str], life: int):
        self.log_path = tmp_path / f"serve-{life}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen([*EXE, "serve", "--config", str(config), "--port", "0"], env=env,
                                     stdout=subprocess.PIPE, stderr=self._log, text=True)
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()  # type: ignore[union-attr]
            if not line:
                break
            lines.append(line)
            m = re.search(r"listening on ws://[^:]+:(\d+)/ws", line)
            if m:
                self.port = int(m.group(1))
                self.banner = "".join(lines)
                return
        self.proc.kill()
        self.proc.wait()
        raise AssertionError(f"serve did not start: {''.join(lines)}\n{self.log_path.read_text()}")

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def post_update(self, update: dict, secret: str = WEBHOOK_SECRET) -> tuple[int, dict, float]:
        """POST the update as Telegram (or curl) would; (status, JSON body, seconds to the answer)."""
        req = urllib.request.Request(
            f"{self.http}/webhook/telegram", data=json.dumps(update).encode(), method="POST",
            headers={"Content-Type": "application/json", HEADER: secret},
        )
        t0 = time.perf_counter()
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read()), time.perf_counter() - t0
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read()), time.perf_counter() - t0

    def status(self, tmp_path: Path, env: dict[str, str]) -> str:
        r = run_cli(tmp_path, "status", "--url", self.http, env=env)
        assert r.returncode == 0, r.stderr
        return r.stdout

    def rpc(self, method: str, params: Any = None) -> Any:
        """One WebSocket RPC against the server; its ``result``."""
        import aiohttp

        async def call() -> Any:
            async with aiohttp.ClientSession() as s, s.ws_connect(f"ws://127.0.0.1:{self.port}/ws") as ws:
                c = WSClient(ws)
                await c.recv()
                reply = await c.request(method, params)
                assert reply.get("error") is None, reply
                return reply["result"]

        return asyncio.run(call())

    def history(self, session: str) -> list[dict]:
        return self.rpc("chat.history", {"session": session})

    def kill9(self) -> None:
        self.proc.kill()  # SIGKILL: no shutdown, nothing flushed
        self.proc.communicate(timeout=10)
        self._log.close()

    def stop(self) -> int:
        self.proc.terminate()
        self.proc.communicate(timeout=20)
        self._log.close()
        return self.proc.returncode

    def log(self) -> str:
        return self.log_path.read_text()


def write_config(tmp_path: Path, wasm: Path, api_base: str, chunk_delay_s: float) -> Path:
    cfg = tmp_path / "config.toml"
    cfg.write_text(f"""
[agent]
provider = "echo"
options = {{ chunk_delay_s = {chunk_delay_s} }}

[[plugins]]
name = "telegram"
path = {json.dumps(str(wasm))}
capabilities = ["http:127.0.0.1"]
secrets = {{ bot_token = "TG_TOKEN_VAR", webhook_secret = "TG_SECRET_VAR" }}
config = {{ api_base = "{api_base}" }}
""")
    return cfg
