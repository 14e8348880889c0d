"""Slow and half-open clients against a real ``exoclaw serve`` under a lowered open-files limit (issue 16).

Today's failure: under ``ulimit -n 1024``, 1,100 half-open HTTP requests made
5 of 5 legitimate clients fail and the gateway wrote 155,775 error lines
(74 MB) in 10 s. Target: legitimate clients keep working during 1,500
half-open connections and the log grows by less than 1 MB.
"""

from __future__ import annotations

import asyncio
import json
import re
import resource
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest

from tests.core.cli.test_serve import EXE, clean_env
from tests.harness import WSClient, text_of

HALF_OPEN = [
    b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n",  # a head that never ends
    b"",  # connects, says nothing
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n{",
    b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",  # an upgrade whose head never ends
]


def need_descriptors(n: int) -> None:
    """This test process must hold ``n`` sockets itself: raise its soft limit, or skip."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= n:
        return
    if hard != resource.RLIM_INFINITY and hard < n:
        pytest.skip(f"needs {n} open files in the test process (hard limit {hard})")
    resource.setrlimit(resource.RLIMIT_NOFILE, (n, hard))


class LimitedServe:
    """``exoclaw serve --port 0`` started with RLIMIT_NOFILE lowered to ``nofile``; its log in a file."""

    def __init__(self, tmp_path: Path, nofile: int, config: str = ""):
        self.log_path = tmp_path / "serve.log"
        cfg = tmp_path / "config.toml"
        cfg.write_text('[agent]\nprovider = "echo"\noptions = { chunk_delay_s = 0 }\n' + config)

        def lower_limit() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen([*EXE, "serve", "--config", str(cfg), "--port", "0"], env=clean_env(tmp_path),
                                     stdout=subprocess.PIPE, stderr=self._log, text=True, preexec_fn=lower_limit)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()  # type: ignore[union-attr]
            m = re.search(r"listening on ws://[^:]+:(\d+)/ws", line)
            if m:
                self.port = int(m.group(1))
                return
            if not line:
                break
        self.stop()
        raise AssertionError(f"serve did not start: {self.log_path.read_text()}")

    def log_size(self) -> int:
        return self.log_path.stat().st_size

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> int:
        self.proc.terminate()
        self.proc.communicate(timeout=30)
        self._log.close()
        return self.proc.returncode


async def open_half(port: int, count: int) -> list[asyncio.StreamWriter]:
    """``count`` half-open connections (as many as connect within a few seconds each)."""
    writers = []
    for i in range(count):
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
        except (OSError, asyncio.TimeoutError):
            continue
        data = HALF_OPEN[i % len(HALF_OPEN)]
        if data:
            writer.write(data)
        writers.append(writer)
    return writers


async def legitimate_round(session: aiohttp.ClientSession, port: int, n: int) -> list[str]:
    """One round of what real clients do; the failures, described."""
    failures = []
    base = f"http://127.0.0.1:{port}"
    try:
        async with session.get(f"{base}/healthz") as r:
            if r.status != 200:
                failures.append(f"healthz {r.status}")
        async with session.ws_connect(f"ws://127.0.0.1:{port}/ws") as ws:
            c = WSClient(ws)
            await c.recv()
            frames = await c.chat({"channel": "t", "account": f"legit{n}", "content": f"still there {n}?"})
            if f"still there {n}?" not in text_of(frames):
                failures.append(f"chat {frames}")
        body = {"model": "exoclaw", "user": f"legit{n}", "messages": [{"role": "user", "content": "and here?"}]}
        async with session.post(f"{base}/v1/chat/completions", json=body) as r:
            answer = await r.json()
            if r.status != 200 or "and here?" not in answer["choices"][0]["message"]["content"]:
                failures.append(f"openai {r.status} {json.dumps(answer)[:200]}")
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        failures.append(f"{type(exc).__name__}: {exc}")
    return failures


async def test_legitimate_clients_keep_working_during_1500_half_open_connections(tmp_path):
    need_descriptors(4096)
    served = LimitedServe(tmp_path, nofile=1024)
    try:
        start_size = served.log_size()
        held = await open_half(served.port, 1500)
        assert len(held) == 1500  # every one was accepted: none waits in a full backlog
        failures = []
        timeout = aiohttp.ClientTimeout(total=15)
        async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(force_close=True)) as s:
            for n in range(5):
                failures += await legitimate_round(s, served.port, n)
                held += await open_half(served.port, 100)  # the attack goes on between rounds
        for writer in held:
            writer.transport.abort()
        grown = served.log_size() - start_size
    finally:
        code = served.stop()
    log = served.log()
    assert failures == []
    assert grown < 1_000_000, f"the log grew by {grown} bytes"
    assert "Traceback" not in log and code == 0
    assert "event=connection_evicted" in log  # the cap (from the 1,024 limit) was reached, and shed


async def test_running_out_of_descriptors_is_logged_once_per_interval(tmp_path):
    """With a cap set above what the limit allows, accept does fail (EMFILE): one line, not one per attempt."""
    need_descriptors(4096)
    served = LimitedServe(tmp_path, nofile=200,
                          config="[gateway]\nmax_connections = 5000\nheader_timeout_s = 1\n")
    try:
        held = await open_half(served.port, 400)
        await asyncio.sleep(2.5)  # header timeouts free descriptors; accepting resumes
        for writer in held:
            writer.transport.abort()
        async with aiohttp.ClientSession() as s:
            for _ in range(50):  # served again once the attack is gone
                try:
                    async with s.get(f"http://127.0.0.1:{served.port}/healthz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
            else:
                raise AssertionError("not served after the attack")
    finally:
        served.stop()
    log = served.log()
    assert "event=max_connections_high" in log  # said at start
    assert 1 <= log.count("event=accept_failed") <= 2
    assert "Exception in callback" not in log and "Traceback" not in log
    assert len(log) < 50_000
