"""Files a user gives grail-rl, and files grail-rl writes: checked before they are read, replaced atomically.

Every command goes through these helpers, so the same promises hold everywhere:

- an input is read only when it is a regular file (a FIFO would block forever, ``/dev/zero`` never ends)
  and, for the small text inputs (recipe, system prompt, chat template), only up to a size limit;
- an output is written to a temporary file beside it and renamed over the target only once it is complete,
  so an interrupted write leaves the old file (or nothing), never half of a new one;
- an existing output is replaced only when the user said ``--overwrite``, and never when it is one of the
  command's own inputs.

Nothing here imports torch; the data, recipe and CLI layers use it.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from grail_rl.errors import GrailError

# Text inputs grail-rl reads whole (a recipe, a system prompt, a chat template) are small; anything larger
# is a wrong path, not a text to read.
MAX_TEXT_INPUT = 4 * 1024 * 1024

_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def special_kind(mode: int) -> str | None:
    """What a non-regular, non-folder file is ("a FIFO (named pipe)", ...), or None for files and folders."""
    for test, name in _KINDS:
        if test(mode):
            return name
    return None


def check_readable_path(path: Path, what: str, *, folder_ok: bool = False) -> Path:
    """``path`` when it is a regular file (or a folder, with ``folder_ok``); else one-line :class:`GrailError`."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise GrailError(f"{what}: {path}: no such file") from None
    except OSError as exc:
        raise GrailError(f"{what}: {path}: cannot read: {exc.strerror}") from None
    if stat.S_ISDIR(mode):
        if folder_ok:
            return path
        raise GrailError(f"{what}: {path} is a folder; give a file")
    kind = special_kind(mode)
    if kind is not None:
        raise GrailError(f"{what}: {path} is {kind}, not a regular file; give a file on disk")
    return path


def read_text_limited(path: Path, what: str, *, limit: int = MAX_TEXT_INPUT) -> str:
    """The UTF-8 text of the regular file ``path``, refusing FIFOs, devices and files over ``limit`` bytes.

    The file is opened without blocking and checked on the open descriptor, so a FIFO put in its place
    between a check and the read cannot hang the command.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise GrailError(f"{what}: {path}: no such file") from None
    except IsADirectoryError:
        raise GrailError(f"{what}: {path} is a folder; give a file") from None
    except OSError as exc:
        raise GrailError(f"{what}: {path}: cannot read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        mode = os.fstat(fh.fileno()).st_mode
        if stat.S_ISDIR(mode):
            raise GrailError(f"{what}: {path} is a folder; give a file")
        kind = special_kind(mode)
        if kind is not None:
            raise GrailError(f"{what}: {path} is {kind}, not a regular file; give a file on disk")
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise GrailError(f"{what}: {path} is larger than {limit // (1024 * 1024)} MiB; is it the right file?")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GrailError(f"{what}: {path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def same_file(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` name the same file (through links too); False when either is missing."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def refuse_existing_output(path: Path, what: str, *, overwrite: bool, inputs: tuple[Path, ...] = ()) -> None:
    """Stop before a command replaces ``path``: always when it is one of ``inputs``, a symbolic link, a folder
    or a special file (a device, a FIFO: replacing ``/dev/null`` with a file would break the system), else
    unless ``overwrite``."""
    for given in inputs:
        if same_file(path, given):
            raise GrailError(f"{what}: {path} is also the input; write the output to another file")
    if path.is_symlink():
        raise GrailError(f"{what}: {path} is a symbolic link; give the path of a regular file")
    if path.exists():
        if path.is_dir():
            raise GrailError(f"{what}: {path} is a folder; give a file name")
        kind = special_kind(os.stat(path).st_mode)
        if kind is not None:
            raise GrailError(f"{what}: {path} is {kind}; give the path of a regular file")
        if not overwrite:
            raise GrailError(f"{what}: {path} already exists; pass --overwrite to replace it, or choose another name")


def ensure_writable_folder(folder: Path, what: str) -> Path:
    """Create ``folder`` if needed and check a file can be written there, before any long work starts."""
    probe = folder / f".grail-write-test-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise GrailError(f"{what}: cannot write in {folder}: {exc.strerror or exc}") from None
    return folder


@contextmanager
def atomic_output(path: Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Write ``path`` through a temporary file in the same folder, renamed over it only on success.

    On any error (a full disk, Ctrl-C) the temporary file is removed and ``path`` keeps what it held.
    """
    path = Path(path)
    # Not tempfile.mkstemp: its 0600 mode would stay on the renamed file; this one gets the usual umask.
    tmp = path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:  # a read-only or missing place, a name too long, a file where a folder should be
        raise GrailError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, mode, encoding=encoding if "b" not in mode else None) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_text_atomically(path: Path, text: str) -> None:
    with atomic_output(path) as fh:
        fh.write(text)


def write_json_atomically(path: Path, data: Any, **dumps: Any) -> None:
    """``data`` as indented JSON at ``path``, replaced atomically (``dumps`` goes to :func:`json.dumps`)."""
    write_text_atomically(path, json.dumps(data, **{"indent": 2, "default": str, **dumps}) + "\n")
