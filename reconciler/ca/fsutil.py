"""Key-custody file primitives: private directories, atomic writes, permission checks."""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from reconciler.ca.errors import CAError
from reconciler.faults import checkpoint

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def ensure_private_dir(path: Path) -> None:
    """Create `path` (and parents) as 0700; refuse an existing one open to others."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    try:
        for part in reversed(missing):  # parents too: mkdir(parents=True) ignores `mode`
            part.mkdir(mode=PRIVATE_DIR, exist_ok=True)
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        # /proc/nope, a read-only mount, a file in the way: the OS's reason, not a traceback
        raise CAError(
            f"cannot create the directory: {exc.strerror or type(exc).__name__}",
            path=path,
            remedy="choose a path in a directory you can write (--state)",
        ) from None
    if mode & 0o077:
        raise CAError(
            f"directory is accessible to group/others (mode {mode:04o})",
            path=path,
            remedy=f"run `chmod 700 {path}`",
        )


def atomic_write(path: Path, data: bytes, *, mode: int = PRIVATE_FILE) -> None:
    """Write via a temporary file in the same directory, fsync, then rename: a crash leaves
    either the old file or the new one, never half of either."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        checkpoint(f"before-rename:{path.name}")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_private_file(path: Path) -> None:
    """Refuse a key file that is missing, not a regular file, or readable by others."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        raise CAError(
            "private key file is missing",
            path=path,
            remedy="restore it from backup; without it this CA cannot sign (rotate to a new root)",
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise CAError(
            "private key is not a regular file (symlinks are refused)",
            path=path,
            remedy="replace it with the key file itself",
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise CAError(
            f"private key file is accessible to group/others (mode {mode:04o})",
            path=path,
            remedy=f"run `chmod 600 {path}` (and consider the key exposed if others could read it)",
        )


def read_file(path: Path, *, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CAError(
            f"{what} is missing",
            path=path,
            remedy="restore it, or re-create the store with `meshd ca init`",
        ) from None
    except OSError as exc:
        raise CAError(f"cannot read {what}: {exc.strerror}", path=path) from None


LOCK_FILE = ".lock"


@contextlib.contextmanager
def exclusive_lock(directory: Path, *, wait_seconds: float = 10.0) -> Iterator[None]:
    """One writer per key store (the reconciler loop and a CLI may share it): an advisory
    `flock` on `<directory>/.lock`, released when the process ends, even by a crash."""
    ensure_private_dir(directory)
    try:
        fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    except OSError as exc:
        raise CAError(
            f"cannot open the lock file: {exc.strerror or type(exc).__name__}",
            path=directory / LOCK_FILE,
            remedy="check the --state directory's owner and permissions",
        ) from None
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise CAError(
                        f"another meshd has held the key store lock for {wait_seconds:.0f} s",
                        path=directory / LOCK_FILE,
                        remedy="wait for it to finish, then retry",
                        code=1,
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)
