"""``exoclaw chat`` / ``status`` against a real ``exoclaw serve``: auth failures, local commands, Ctrl-C.

The interactive loop runs in a real pseudo-terminal whose line discipline
turns ``\\x03`` into SIGINT, exactly as a user's Ctrl-C.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import re
import select
import subprocess
import termios
import time

import aiohttp
import pytest

from tests.harness import WSClient
from tests.serving import EXE, clean_env, readme_block, run_cli, start_serve, stop

TOKEN = "a-token-of-sufficient-length-42"
SLOW = '[agent]\nprovider = "echo"\noptions = { chunk_delay_s = 0.15 }\n[agents.work]\nprovider = "echo"\n'
LONG = " ".join(f"word{i}" for i in range(60))


def only_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.fixture
def token_gateway(tmp_path):
    served = start_serve(tmp_path, env=clean_env(tmp_path, EXOCLAW_TOKEN=TOKEN))
    yield served
    stop(served)


@pytest.mark.parametrize("command", ["status", "chat"])
def test_a_missing_token_fails_at_once_with_one_line(tmp_path, token_gateway, command):
    args = [command, "hi"] if command == "chat" else [command]
    r = run_cli(tmp_path, *args, "--url", token_gateway.url)
    assert r.returncode == 1
    assert only_line(r.stderr) == (f"exoclaw: the gateway at {token_gateway.url} requires a token: "
                                   "pass --token or set EXOCLAW_TOKEN")


@pytest.mark.parametrize("command", ["status", "chat"])
def test_a_wrong_token_fails_with_one_line(tmp_path, token_gateway, command):
    args = [command, "hi"] if command == "chat" else [command]
    r = run_cli(tmp_path, *args, "--url", token_gateway.url, "--token", "not-the-token")
    assert r.returncode == 1
    assert only_line(r.stderr) == ("exoclaw: authentication failed: the gateway refused the token "
                                   "(check --token or EXOCLAW_TOKEN)")
    r = run_cli(tmp_path, *args, "--url", token_gateway.url, env=clean_env(tmp_path, EXOCLAW_TOKEN=TOKEN))
    assert r.returncode == 0, r.stderr


def test_global_flags_after_the_command(tmp_path):
    served = start_serve(tmp_path, "--debug")
    assert f'try: exoclaw chat --url {served.url} "hello"' in served.banner
    try:
        r = run_cli(tmp_path, "status", "--debug", "--url", served.url)
        assert r.returncode == 0, r.stderr
        assert "level=debug" in r.stderr
    finally:
        code, _, err = stop(served)
    assert code == 0 and "level=debug" in err
    r = run_cli(tmp_path, "config", "check", "--debug")
    assert r.returncode == 0, r.stderr


def test_one_message_to_a_named_agent(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(SLOW.replace("0.15", "0"))
    served = start_serve(tmp_path, "--config", str(cfg))
    try:
        r = run_cli(tmp_path, "chat", "for work", "--agent", "work", "--url", served.url)
        assert r.returncode == 0, r.stderr
        assert "You said: for work" in r.stdout
        r = run_cli(tmp_path, "chat", "hi", "--agent", "wrok", "--url", served.url)
        assert r.returncode == 1
        assert only_line(r.stderr) == "exoclaw: no agent named 'wrok' on this gateway (agents: default, work)"
        sessions = asyncio.run(ws_call(served.url, "session.list"))
        assert [s["key"].split(":")[0] for s in sessions] == ["work"]
    finally:
        stop(served)


# ----------------------------------------------------------------------------- the interactive loop


class Terminal:
    """A command in a pseudo-terminal of its own (its controlling tty: ``\\x03`` is a real Ctrl-C)."""

    def __init__(self, args: list[str], env: dict[str, str]):
        self.master, slave = pty.openpty()

        def controlling_tty() -> None:
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env,
                                     preexec_fn=controlling_tty, close_fds=True)
        os.close(slave)
        self.seen = ""  # everything the terminal showed
        self.pos = 0  # how far expect() has consumed

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def expect(self, pattern: str, timeout: float = 30) -> str:
        """Wait until ``pattern`` (a regex) appears after what was already consumed; return that stretch."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = regex.search(self.seen, self.pos)
            if m:
                stretch = self.seen[self.pos:m.end()]
                self.pos = m.end()
                return stretch
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(left):
                raise AssertionError(f"{pattern!r} never appeared; the terminal showed:\n{self.seen[self.pos:]}")

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return False
        try:
            data = os.read(self.master, 65536)
        except OSError:  # the child closed the terminal
            return False
        self.seen += data.decode(errors="replace").replace("\r\n", "\n")
        return bool(data)

    def wait(self, timeout: float = 20) -> int:
        code = self.proc.wait(timeout=timeout)
        while self._read(0.05):
            pass
        os.close(self.master)
        return code


async def ws_call(url: str, method: str, params: dict | None = None):
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        c = WSClient(ws)
        await c.recv()
        return (await c.request(method, params))["result"]


def user_messages(url: str) -> dict[str, list[str]]:
    """Every stored session's user messages, by session key."""

    async def collect() -> dict[str, list[str]]:
        out = {}
        for s in await ws_call(url, "session.list"):
            history = await ws_call(url, "chat.history", {"session": s["key"]})
            out[s["key"]] = [m["content"] for m in history if m["role"] == "user"]
        return out

    return asyncio.run(collect())


def test_interactive_commands_stay_local_and_ctrl_c_cancels_the_reply(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(SLOW)
    served = start_serve(tmp_path, "--config", str(cfg))
    env = clean_env(tmp_path, USER="alice", TERM="dumb")
    term = Terminal([*EXE, "chat", "--url", served.url], env)
    try:
        term.expect(r"/help for commands")
        term.expect(r"\n> ")
        term.send("/help\n")
        assert "/new" in term.expect(r"/quit, exit")
        term.expect(r"\n> ")
        term.send("/qiut\n")
        term.expect(r"unknown command /qiut")
        term.send("short one\n")
        term.expect(r"You said: short one")
        term.expect(r"\n> ")

        # Ctrl-C mid-reply: the gateway is told to stop, the prompt comes back
        term.send(LONG + "\n")
        term.expect(r"You said: word0")
        term.send("\x03")
        term.expect(r"error: turn cancelled by the client")
        term.expect(r"\n> ")

        # Ctrl-C at the prompt drops the half-typed line and does not eat the next one
        term.send("half typed")
        term.expect(r"half typed")
        term.send("\x03")
        term.expect(r"\n> ")
        term.send("the next line\n")
        term.expect(r"You said: the next line")
        term.expect(r"\n> ")

        term.send("/agent\n")
        listing = term.expect(r"work: echo/echo\n")
        assert "* default: echo/echo (default)" in listing
        term.send("/agent nope\n")
        term.expect(r"error: no agent named 'nope'")
        term.send("/agent work\n")
        term.expect(r"talking to agent work")
        term.expect(r"work> ")
        term.send("to work\n")
        term.expect(r"You said: to work")
        term.expect(r"work> ")
        term.send("/new\n")
        peer = re.search(r"new session: peer (\S+)", term.expect(r"new session: peer \S+\n")).group(1)
        term.send("fresh start\n")
        term.expect(r"You said: fresh start")
        term.expect(r"work> ")
        term.send("exit\n")
        assert term.wait() == 0, term.seen
        stored = user_messages(served.url)
    finally:
        if term.proc.poll() is None:
            term.proc.kill()
        code, _, log = stop(served)
    assert stored == {
        "default:cli:alice:main": ["short one", "the next line"],
        "work:cli:alice:main": ["to work"],
        f"work:cli:alice:{peer}": ["fresh start"],
    }
    assert "Traceback" not in term.seen
    # the cancelled turn stopped in the gateway (it was cancelled, not finished and stored)
    assert 'event=turn_cancelled session=default:cli:alice:main reason="turn cancelled by the client"' in log


def test_ctrl_c_during_a_single_message_cancels_it_on_the_gateway(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(SLOW)
    served = start_serve(tmp_path, "--config", str(cfg))
    try:
        term = Terminal([*EXE, "chat", LONG, "--url", served.url], clean_env(tmp_path, TERM="dumb"))
        term.expect(r"You said: word0")
        term.send("\x03")
        term.expect(r"turn cancelled by the client")
        assert term.wait() == 130
        assert user_messages(served.url) == {}
    finally:
        stop(served)


def test_the_readme_shows_what_the_first_chat_prints(tmp_path):
    served = start_serve(tmp_path)  # zero-config, as after the README's first command
    try:
        r = run_cli(tmp_path, "chat", "hello", "--url", served.url)  # a free port, not 7200: tests run side by side
    finally:
        stop(served)
    assert r.returncode == 0, r.stderr
    shown = r.stdout.rstrip("\n").splitlines() + r.stderr.rstrip("\n").splitlines()
    assert shown == readme_block('exoclaw chat "hello"')
