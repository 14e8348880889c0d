"""Shared fixtures of the benchmark suite: real processes and what they cost.

* :func:`gateway` starts ``exoclaw serve`` as a subprocess (``python -m
  exoclaw_core.cli.main serve --port 0``) with a fresh ``$EXOCLAW_HOME`` and
  a config file written for the benchmark, and reads its port from the last
  line of the banner (``listening on ws://127.0.0.1:PORT/ws``). Its log
  (stderr, at the default level) goes to a file, as a deployment's would.
* :func:`fake_llm` starts the project's fake LLM server (tests/fakes) in
  another process through ``benches/loadgen.py fake-llm``.
* :func:`loadgen` runs ``benches/loadgen.py`` in its own process.
* CPU time (user + system, all threads) and RSS are read from
  ``/proc/PID/stat`` and ``/proc/PID/status`` (Linux only).
* Figures recorded with :func:`figures` are printed as one table at the end
  of the run (and kept in each benchmark's ``extra_info``).

Knobs (environment): ``EXOCLAW_BENCH_SECONDS`` (measured window of each
throughput run, default 5), ``EXOCLAW_BENCH_WARMUP`` (seconds before it,
default 1), ``EXOCLAW_BENCH_CHUNK_DELAY_MS`` (pause between a streamed
reply's chunks in the per-chunk latency run, default 50),
``EXOCLAW_BENCH_TTFT_TURNS`` (default 300), ``EXOCLAW_BENCH_SESSIONS``
(default 1000), ``EXOCLAW_BENCH_STRICT=1`` (a missed target fails its test;
by default it is only reported), ``EXOCLAW_BENCH_GATEWAY_PRELUDE`` (Python
run in the gateway process before it starts, for what-if experiments, e.g.
``import uvloop; uvloop.install()``), ``EXOCLAW_BENCH_FIGURES_JSON`` (also
write the table there, as JSON).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

REPO = Path(__file__).resolve().parents[1]
LOADGEN = REPO / "benches" / "loadgen.py"
CLK_TCK = os.sysconf("SC_CLK_TCK")
_STRIP_ENV = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "EXOCLAW_CONFIG", "EXOCLAW_TOKEN", "EXOCLAW_HOME")


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


SECONDS = env_float("EXOCLAW_BENCH_SECONDS", 5.0)
WARMUP = env_float("EXOCLAW_BENCH_WARMUP", 1.0)
STRICT = os.environ.get("EXOCLAW_BENCH_STRICT", "") not in ("", "0")


# ---------------------------------------------------------------- /proc


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (``/proc/stat``: everything but idle and iowait)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / CLK_TCK


def wait_for_quiet(max_wait: float = 30.0, busy_cores: float = 0.15) -> float:
    """Wait (at most ``max_wait`` s) until the machine is nearly idle; return the busy cores last seen.

    Other work on the 2 cores (a test run, another benchmark) distorts every
    figure here, so each measurement starts on a quiet machine when it can.
    """
    deadline = time.monotonic() + max_wait
    while True:
        b0 = machine_busy_seconds()
        time.sleep(0.5)
        busy = (machine_busy_seconds() - b0) / 0.5
        if busy <= busy_cores or time.monotonic() >= deadline:
            return busy


def rss_mb(pid: int) -> float:
    """Resident set size (VmRSS) of process ``pid`` in MB (10^6 bytes)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024 / 1e6
    raise RuntimeError(f"no VmRSS for {pid}")


# ---------------------------------------------------------------- processes


def _wait_for_line(path: Path, needle: str, proc: subprocess.Popen, timeout: float, what: str) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text() if path.exists() else ""
        for line in text.splitlines():
            if needle in line:
                return line
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before it listened:\n{text}")
        time.sleep(0.02)
    raise RuntimeError(f"{what} did not listen within {timeout} s")


def _stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@dataclass
class GatewayProcess:
    """A running ``exoclaw serve``."""

    proc: subprocess.Popen
    url: str
    home: Path
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def rss(self) -> float:
        return rss_mb(self.pid)

    def log_lines(self) -> int:
        with open(self.log, "rb") as f:
            return sum(1 for _ in f)

    def stop(self) -> None:
        _stop(self.proc)


def start_gateway(workdir: Path, agent_toml: str, extra_env: dict[str, str] | None = None) -> GatewayProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "config.toml"
    config.write_text(agent_toml)
    home = workdir / "home"
    env = {k: v for k, v in os.environ.items() if k not in _STRIP_ENV}
    env.update({"EXOCLAW_HOME": str(home), "PYTHONUNBUFFERED": "1"}, **(extra_env or {}))
    prelude = os.environ.get("EXOCLAW_BENCH_GATEWAY_PRELUDE", "")
    code = f"{prelude}\nimport sys\nfrom exoclaw_core.cli.main import main\nsys.exit(main(sys.argv[1:]))"
    out, log = workdir / "gateway.out", workdir / "gateway.log"
    with open(out, "wb") as fo, open(log, "wb") as fe:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, "serve", "--config", str(config), "--bind", "127.0.0.1", "--port", "0"],
            cwd=REPO, env=env, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL,
        )
    try:
        line = _wait_for_line(out, "listening on ws://", proc, 60, "exoclaw serve")
    except Exception:
        _stop(proc)
        raise
    url = line.split("listening on ", 1)[1].split()[0]
    return GatewayProcess(proc, url, home, log)


@dataclass
class FakeLLMProcess:
    proc: subprocess.Popen
    url: str
    out: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def stop(self) -> dict[str, Any]:
        """Close its stdin (it then prints its stats and exits); return the stats."""
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                _stop(self.proc)
        for line in self.out.read_text().splitlines():
            if line.startswith("{"):
                return json.loads(line)
        return {}


def start_fake_llm(workdir: Path, *, chunks: int = 20, chunk_delay_ms: float = 0.0, ttft_ms: float = 0.0,
                   stamped: bool = False) -> FakeLLMProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "fake_llm.out"
    args = [sys.executable, str(LOADGEN), "fake-llm", "--port", "0", "--chunks", str(chunks),
            "--chunk-delay-ms", str(chunk_delay_ms), "--ttft-ms", str(ttft_ms)]
    if stamped:
        args.append("--stamped")
    with open(out, "wb") as fo:
        proc = subprocess.Popen(args, cwd=REPO, stdout=fo, stderr=subprocess.STDOUT, stdin=subprocess.PIPE)
    try:
        line = _wait_for_line(out, "listening on http://", proc, 30, "fake LLM server")
    except Exception:
        _stop(proc)
        raise
    return FakeLLMProcess(proc, line.split("listening on ", 1)[1].strip(), out)


@dataclass
class RelayProcess:
    """``loadgen.py relay``: a bare WebSocket → HTTP streaming relay, the latency floor."""

    proc: subprocess.Popen
    url: str

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def log_lines(self) -> int:
        return 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                _stop(self.proc)


def start_relay(workdir: Path, upstream: str) -> RelayProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "relay.out"
    with open(out, "wb") as fo:
        proc = subprocess.Popen([sys.executable, str(LOADGEN), "relay", "--upstream", upstream], cwd=REPO,
                                stdout=fo, stderr=subprocess.STDOUT, stdin=subprocess.PIPE)
    try:
        line = _wait_for_line(out, "listening on ws://", proc, 30, "relay")
    except Exception:
        _stop(proc)
        raise
    return RelayProcess(proc, line.split("listening on ", 1)[1].strip())


class LoadgenProcess:
    """``benches/loadgen.py`` in its own process; JSON lines on its stdout."""

    def __init__(self, args: list[str], workdir: Path):
        workdir.mkdir(parents=True, exist_ok=True)
        self.err = workdir / f"loadgen-{args[0]}.err"
        with open(self.err, "wb") as fe:
            self.proc = subprocess.Popen(
                [sys.executable, str(LOADGEN), *args], cwd=REPO, stdout=subprocess.PIPE, stderr=fe,
                stdin=subprocess.PIPE, text=True,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def wait_event(self, name: str) -> dict[str, Any]:
        """Read stdout up to the JSON line whose ``event`` is ``name``."""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                obj = json.loads(line)
                if obj.get("event") == name:
                    return obj
        self.proc.wait(10)
        raise RuntimeError(f"loadgen exited ({self.proc.returncode}) before {name!r}:\n{self.err.read_text()[-3000:]}")

    def release(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def result(self, timeout: float = 300) -> dict[str, Any]:
        result = self.wait_event("result")
        self.proc.wait(timeout)
        return result

    def kill(self) -> None:
        _stop(self.proc, signal.SIGKILL)


# ---------------------------------------------------------------- fixtures


class Machine:
    """The /proc readings, for benchmark modules (which cannot import this conftest)."""

    cpu_seconds = staticmethod(cpu_seconds)
    rss_mb = staticmethod(rss_mb)
    busy_seconds = staticmethod(machine_busy_seconds)
    wait_for_quiet = staticmethod(wait_for_quiet)


@pytest.fixture(scope="session")
def machine() -> Machine:
    return Machine()


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Callable[..., GatewayProcess]]:
    """``gateway(agent_toml)`` starts ``exoclaw serve``; every one started is stopped at teardown."""
    started: list[GatewayProcess] = []

    def start(agent_toml: str, name: str = "gw", **env: str) -> GatewayProcess:
        gw = start_gateway(tmp_path / name, agent_toml, env)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()


@pytest.fixture
def fake_llm(tmp_path: Path) -> Iterator[Callable[..., FakeLLMProcess]]:
    """``fake_llm(chunks=20, chunk_delay_ms=0, ttft_ms=0, stamped=False)`` in its own process."""
    started: list[FakeLLMProcess] = []

    def start(**kwargs: Any) -> FakeLLMProcess:
        server = start_fake_llm(tmp_path / f"llm{len(started)}", **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[Callable[[str], RelayProcess]]:
    """``relay(upstream_url)``: the bare relay in its own process, stopped at teardown."""
    started: list[RelayProcess] = []

    def start(upstream: str) -> RelayProcess:
        r = start_relay(tmp_path / f"relay{len(started)}", upstream)
        started.append(r)
        return r

    yield start
    for r in started:
        r.stop()


@pytest.fixture
def loadgen(tmp_path: Path) -> Iterator[Callable[..., LoadgenProcess]]:
    """``loadgen("turns", "--url", url, ...)`` starts the load generator; killed at teardown if still running."""
    started: list[LoadgenProcess] = []

    def start(*args: str) -> LoadgenProcess:
        lg = LoadgenProcess([str(a) for a in args], tmp_path / "loadgen")
        started.append(lg)
        return lg

    yield start
    for lg in started:
        if lg.proc.poll() is None:
            lg.kill()


# ---------------------------------------------------------------- the figures table


@dataclass
class Figure:
    bench: str
    figure: str
    value: float | None
    unit: str
    target: str = ""
    ok: bool | None = None  # None: no target
    note: str = ""


@dataclass
class FigureTable:
    rows: list[Figure] = field(default_factory=list)

    def add(self, bench: str, figure: str, value: float | None, unit: str, *, target: str = "",
            ok: bool | None = None, note: str = "") -> Figure:
        row = Figure(bench, figure, value, unit, target, ok, note)
        self.rows.append(row)
        return row

    def render(self) -> str:
        def fmt(v: float | None) -> str:
            if v is None:
                return "-"
            if abs(v) >= 100:
                return f"{v:,.0f}"
            if abs(v) >= 10:
                return f"{v:.1f}"
            return f"{v:.3g}"

        head = ("benchmark", "figure", "value", "unit", "target", "result / notes")
        def status(r: Figure) -> str:
            if r.ok is None:
                return r.note
            return ("ok" if r.ok else "MISSED") + (f" ({r.note})" if r.note else "")

        body = [(r.bench, r.figure, fmt(r.value), r.unit, r.target, status(r)) for r in self.rows]
        widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
        lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in (head, *body)]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)


TABLE = FigureTable()


@pytest.fixture(scope="session")
def figures() -> FigureTable:
    """The session's table of end-to-end figures, printed at the end of the run."""
    return TABLE


@dataclass(frozen=True)
class Knobs:
    seconds: float = SECONDS
    warmup: float = WARMUP
    chunk_delay_ms: float = env_float("EXOCLAW_BENCH_CHUNK_DELAY_MS", 50.0)
    ttft_turns: int = env_int("EXOCLAW_BENCH_TTFT_TURNS", 300)
    sessions: int = env_int("EXOCLAW_BENCH_SESSIONS", 1000)
    strict: bool = STRICT

    def check(self, ok: bool, message: str) -> None:
        """Fail on a missed target only with ``EXOCLAW_BENCH_STRICT=1``; always reported in the table."""
        if self.strict:
            assert ok, message


@pytest.fixture(scope="session")
def knobs() -> Knobs:
    """Durations and sizes, from the ``EXOCLAW_BENCH_*`` environment variables."""
    return Knobs()


def describe_run() -> str:
    """The code and the machine the figures are for: commit (+ "dirty"), cores, CPU model, Python."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "exoclaw_core", "exoclaw_hooks",
                                "builtin_plugins"], cwd=REPO, capture_output=True, text=True, timeout=10).stdout
        commit = f"{head}{' + uncommitted changes' if dirty.strip() else ''}" if head else "unknown commit"
    except (OSError, subprocess.SubprocessError):
        commit = "unknown commit"
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    return (f"{commit}; {os.cpu_count()} cores {model}; Python {sys.version.split()[0]}; "
            f"{SECONDS:g} s windows")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not TABLE.rows:
        return
    about = describe_run()
    terminalreporter.write_sep("=", "exoclaw gateway figures")
    terminalreporter.write_line(about)
    terminalreporter.write_line(TABLE.render())
    out = os.environ.get("EXOCLAW_BENCH_FIGURES_JSON")
    if out:  # benches/report.py reads it back
        Path(out).write_text(json.dumps({"about": about, "rows": [r.__dict__ for r in TABLE.rows]}, indent=1))
