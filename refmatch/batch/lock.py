"""One batch run at a time per database: an exclusive lock on ``<db>.batch.lock``.

An OS lock (flock) rather than a row in the database: it is released when the process
ends however it ends, so a killed run never leaves a stale lock behind and can be
resumed at once. The file holds the pid of the holder, for the error message.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from refmatch.domain.errors import Conflict


class RunLocked(Conflict):
    """Another batch run holds the lock (cron: try again later)."""

    code = "batch_locked"


def lock_path(db_path: str | Path) -> Path:
    return Path(str(db_path) + ".batch.lock")


@contextmanager
def run_lock(db_path: str | Path) -> Iterator[Path]:
    path = lock_path(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise RunLocked(
                f"another batch run is in progress (lock {path} held by pid {holder}); try again when it has finished"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
