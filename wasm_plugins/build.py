"""Build the Zig plugins in ``wasm_plugins/`` into ``wasm_plugins/build/NAME.wasm``.

Every directory here holding ``plugin.zig`` (or ``NAME.zig``) is a plugin; it
is compiled with the ``ziglang`` package's compiler (``python -m ziglang``,
no network) against the helper ``lib/exoclaw.zig``, imported as the module
``exoclaw``. A plugin is rebuilt only when a content hash of its sources, the
helper, the compiler version and the flags differs from the stamp left by the
last build (``build/.NAME.stamp``); outputs are written atomically, and a
lock file serialises concurrent builds into the same output directory.

    python wasm_plugins/build.py [--force] [--out-dir DIR] [NAME ...]

or, from Python, ``build_all(out_dir=None, force=False) -> {name: path}``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
LIB_DIR = HERE / "lib"
LIB_MODULE = LIB_DIR / "exoclaw.zig"
DEFAULT_OUT_DIR = HERE / "build"
DEFAULT_CACHE_DIR = HERE / ".zig-cache"
NOT_PLUGINS = {"lib", "build", ".zig-cache", "__pycache__"}
COMPILE_TIMEOUT_S = 600

# Per-module options, given before each -M (zig resets them after every -M).
MODULE_FLAGS = ["-target", "wasm32-freestanding", "-O", "ReleaseSmall"]


class BuildError(RuntimeError):
    """A plugin failed to compile (the message carries the compiler's output)."""


def discover(root: Path = HERE) -> dict[str, Path]:
    """Plugin name -> its root source file, for every plugin directory."""
    found: dict[str, Path] = {}
    for d in sorted(root.iterdir()):
        if not d.is_dir() or d.name in NOT_PLUGINS or d.name.startswith("."):
            continue
        for candidate in (d / "plugin.zig", d / f"{d.name}.zig"):
            if candidate.is_file():
                found[d.name] = candidate
                break
    return found


def zig_command(src: Path, out: Path, cache_dir: Path) -> list[str]:
    """The compiler command line for one plugin."""
    return [
        sys.executable, "-m", "ziglang", "build-exe",
        "-fno-entry", "-rdynamic",
        *MODULE_FLAGS, "--dep", "exoclaw", f"-Mroot={src}",
        *MODULE_FLAGS, f"-Mexoclaw={LIB_MODULE}",
        f"-femit-bin={out}",
        "--cache-dir", str(cache_dir / "local"),
        "--global-cache-dir", str(cache_dir / "global"),
    ]


def _zig_version() -> str:
    try:
        from importlib.metadata import version

        return version("ziglang")
    except Exception:  # noqa: BLE001 - not installed: the compile step says so
        return "unknown"


def _files(d: Path) -> Iterator[Path]:
    for p in sorted(d.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts and ".zig-cache" not in p.parts:
            yield p


def source_digest(src: Path) -> str:
    """Hash of everything the output of ``src`` depends on."""
    h = hashlib.sha256()
    h.update(f"zig {_zig_version()}\0".encode())
    h.update(" ".join(zig_command(Path("SRC"), Path("OUT"), Path("CACHE"))[3:]).encode())
    h.update(b"\0" + src.name.encode() + b"\0")
    for base in (src.parent, LIB_DIR):
        for p in _files(base):
            h.update(str(p.relative_to(base.parent)).encode() + b"\0")
            h.update(p.read_bytes() + b"\0")
    return h.hexdigest()


@contextlib.contextmanager
def _locked(out_dir: Path) -> Iterator[None]:
    """Serialise builds into one output directory (other test sessions too)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with open(out_dir / ".lock", "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _write_atomic(path: Path, data: str) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(data)
    os.replace(tmp, path)


def _build_one(name: str, src: Path, out_dir: Path, cache_dir: Path, force: bool) -> tuple[Path, str]:
    out = out_dir / f"{name}.wasm"
    stamp = out_dir / f".{name}.stamp"
    digest = source_digest(src)
    if not force and out.is_file() and stamp.is_file() and stamp.read_text().strip() == digest:
        return out, "up to date"
    tmp = out_dir / f".{name}.{os.getpid()}.tmp.wasm"
    started = time.monotonic()
    try:
        proc = subprocess.run(
            zig_command(src, tmp, cache_dir),
            capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S, cwd=HERE,
        )
    except subprocess.TimeoutExpired as exc:
        raise BuildError(f"{name}: the compiler did not finish in {COMPILE_TIMEOUT_S} s") from exc
    if proc.returncode != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        message = (proc.stderr or proc.stdout).strip() or f"exit status {proc.returncode}"
        if "No module named ziglang" in message:
            message += "\n(install the compiler: pip install ziglang)"
        raise BuildError(f"{name}: compiling {src} failed:\n{message}")
    os.replace(tmp, out)
    _write_atomic(stamp, digest + "\n")
    return out, f"built in {time.monotonic() - started:.1f} s"


def build_all(
    out_dir: str | os.PathLike[str] | None = None,
    force: bool = False,
    *,
    names: Iterable[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    plugins_dir: str | os.PathLike[str] | None = None,
    log: Callable[[str], None] | None = print,
) -> dict[str, Path]:
    """Build every plugin (or those in ``names``); return ``{name: wasm path}``.

    Up-to-date plugins are skipped unless ``force``. ``log`` gets one line
    per plugin (``None`` for silence). ``plugins_dir`` looks for plugin
    directories elsewhere (they still import this directory's helper). Raises :class:`BuildError` if any
    plugin fails to compile (the others are still built).
    """
    # absolute: the compiler runs in this directory
    out = Path(out_dir).resolve() if out_dir is not None else DEFAULT_OUT_DIR
    cache = Path(cache_dir).resolve() if cache_dir is not None else DEFAULT_CACHE_DIR
    out.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    plugins = discover(Path(plugins_dir).resolve() if plugins_dir is not None else HERE)
    if names is not None:
        wanted = list(names)
        unknown = [n for n in wanted if n not in plugins]
        if unknown:
            raise BuildError(f"no such plugin: {', '.join(unknown)} (have: {', '.join(plugins)})")
        plugins = {n: plugins[n] for n in wanted}
    results: dict[str, Path] = {}
    errors: list[str] = []
    with _locked(out), ThreadPoolExecutor(max_workers=max(1, min(len(plugins), os.cpu_count() or 1))) as pool:
        futures = {name: pool.submit(_build_one, name, src, out, cache, force) for name, src in plugins.items()}
        for name, fut in futures.items():
            try:
                path, status = fut.result()
            except BuildError as exc:
                errors.append(str(exc))
                if log:
                    log(f"{name}: FAILED")
                continue
            results[name] = path
            if log:
                log(f"{name}: {status} -> {path}")
    if errors:
        raise BuildError("\n\n".join(errors))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the Exoclaw Zig WASM plugins.")
    parser.add_argument("names", nargs="*", help="plugins to build (default: all)")
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    parser.add_argument("--out-dir", default=None, help=f"output directory (default: {DEFAULT_OUT_DIR})")
    parser.add_argument("--plugins-dir", default=None, help=f"where plugin directories are (default: {HERE})")
    args = parser.parse_args(argv)
    try:
        build_all(args.out_dir, args.force, names=args.names or None, plugins_dir=args.plugins_dir)
    except BuildError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
