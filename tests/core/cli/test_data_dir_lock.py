"""One gateway per SQLite data directory (SPEC §10): a second `exoclaw serve` is refused at start."""

from __future__ import annotations

import signal
import subprocess

from exoclaw_core.store.dirlock import DataDirBusy, lock_data_dir
from tests.serving import EXE, clean_env, start_serve, stop


def _second(tmp_path, env) -> subprocess.CompletedProcess:
    return subprocess.run([*EXE, "serve", "--port", "0"], env=env, capture_output=True, text=True, timeout=60)


def test_a_second_gateway_on_the_same_data_directory_is_refused_and_kill_9_frees_it(tmp_path):
    env = clean_env(tmp_path)
    first = start_serve(tmp_path, env=env)
    try:
        second = _second(tmp_path, env)
        assert second.returncode == 1
        message = second.stderr.strip().splitlines()
        assert len(message) == 1, second.stderr
        assert str(tmp_path / "home") in message[0]
        assert f"pid {first.proc.pid}" in message[0]
        assert "Traceback" not in second.stderr
        assert "listening on" not in second.stdout
    finally:
        first.proc.send_signal(signal.SIGKILL)
        first.proc.communicate(timeout=10)
    # the kernel dropped the lock with the process: a new gateway starts on the same directory
    third = start_serve(tmp_path, env=env)
    code, _, err = stop(third)
    assert code == 0, err


def test_another_data_directory_is_not_refused(tmp_path):
    first = start_serve(tmp_path, env=clean_env(tmp_path))
    try:
        other = start_serve(tmp_path, env=clean_env(tmp_path, EXOCLAW_HOME=str(tmp_path / "other")))
        assert stop(other)[0] == 0
    finally:
        stop(first)


def test_the_lock_is_released_with_its_holder_and_names_the_pid(tmp_path):
    import os

    import pytest

    held = lock_data_dir(tmp_path / "data")
    assert held is not None and held.held
    with pytest.raises(DataDirBusy, match=f"pid {os.getpid()}"):
        lock_data_dir(tmp_path / "data")
    held.release()
    again = lock_data_dir(tmp_path / "data")
    assert again is not None
    again.release()
