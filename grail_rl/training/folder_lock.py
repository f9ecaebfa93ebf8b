"""One process per output folder: an exclusive ``flock`` on ``OUTPUT/.grail-lock``.

Two ``train`` processes on one folder would interleave their logs and overwrite each other's checkpoints.
The first takes the lock and holds it for the whole run; a second is refused with one line naming the
holder (pid, host, start time and command, written into the lock file). The operating system releases
the lock when its process ends, however it ends, so a lock left by a killed process is simply taken over
(and said so): there is no stale-lock timeout to guess.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import platform
import stat
import sys
import time
from pathlib import Path
from typing import Any

from grail_rl.errors import GrailError

LOCK_FILE = ".grail-lock"
logger = logging.getLogger("grail_rl.training")


class FolderInUseError(GrailError):
    """Another grail-rl process holds the output folder."""


class FolderLock:
    """An exclusive lock on a folder, held until :meth:`release` or the end of the process."""

    def __init__(self, folder: Path, what: str = "output.dir"):
        self.folder = folder
        self.path = folder / LOCK_FILE
        self.what = what  # how the folder is named in messages: the setting or option that chose it
        self._fd: int | None = None

    def acquire(self) -> FolderLock:
        try:
            # O_NOFOLLOW: a symlink planted as the lock file must not make the lock write into its target.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise GrailError(f"{self.what}: {self.path} is a symbolic link; remove it") from None
            raise GrailError(f"{self.what}: cannot write in {self.folder}: {exc.strerror}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise GrailError(f"{self.what}: {self.path} is not a regular file; remove it")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise FolderInUseError(
                f"{self.what}: {self.folder} is in use by another grail-rl process ({describe(holder)}); wait "
                f"for it to finish or stop it, or choose another {self.what}"
            ) from None
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP):
                raise GrailError(
                    f"{self.what}: {self.folder} is on a file system without file locks ({exc.strerror}); "
                    f"choose a {self.what} on a local or lock-capable file system"
                ) from None
            raise GrailError(f"{self.what}: cannot lock {self.path}: {exc.strerror}") from None
        previous = _read_holder(fd)
        if previous.get("pid") and (previous.get("pid"), previous.get("host")) != (os.getpid(), platform.node()):
            logger.info("took over the lock of %s left by a process that is gone (%s)", self.folder, describe(previous))
        me = {
            "pid": os.getpid(),
            "host": platform.node(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]])[:300],
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        data = json.loads(os.pread(fd, 4096, 0).decode("utf-8", "replace") or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "no details recorded"
    return (
        f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, since {holder.get('since', '?')}: "
        f"{holder.get('command', '?')}"
    )
