"""One gateway per SQLite data directory (SPEC §10): an OS lock held for the process's life.

Two gateways on one SQLite file would each count only their own spend and
run a session's turns side by side; neither can be made exact, so the second
is refused at start. The lock is ``flock`` on ``<data_dir>/exoclaw.lock``:
the kernel drops it when the process ends however it ends (``kill -9``
included), so a stale lock file never keeps a new gateway out. The file
holds the owner's pid, for the message only (the lock, not the file, is
what counts). The descriptor is not inherited by child processes (Python's
default), so a plugin's subprocess cannot keep the lock alive.

Only ``exoclaw serve`` takes it; the read-only CLI commands (``exoclaw
usage`` …) open the database beside a running gateway as before.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

#: the lock file's name inside the data directory
LOCK_FILENAME = "exoclaw.lock"


class DataDirBusy(RuntimeError):
    """Another live process holds the data directory's lock."""


class DataDirLock:
    """The held lock; :meth:`release` (or the process's end) lets it go."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the only descriptor drops the flock


def lock_data_dir(data_dir: Path | str) -> DataDirLock | None:
    """Take the data directory's lock, or raise :class:`DataDirBusy` naming the directory and the holder's pid.

    Returns ``None`` when no lock can be made at all (the directory cannot be
    created or written): the store then cannot open its file either and
    falls back to memory, where there is nothing to share.
    """
    directory = Path(data_dir).expanduser()
    path = directory / LOCK_FILENAME
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = _read_pid(fd)
        os.close(fd)
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None  # a file system without flock: nothing to enforce with
        who = f"(pid {holder}) " if holder else ""
        raise DataDirBusy(
            f"another exoclaw gateway {who}is using the data directory {directory}: stop it, or give this "
            "one its own directory ($EXOCLAW_HOME), or share a PostgreSQL store between them ([store] url)"
        ) from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError:  # the pid is only for the message
        pass
    return DataDirLock(path, fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None
