"""A policy folder on disk as a reconciler source: what `meshd up` watches.

A change is noticed by polling the modification times and sizes of the folder's files
(no new dependency, and it works on every filesystem), and a burst of saves — an editor
writing a file and its backup, `git checkout` touching many — is debounced into one pass.
The revision id is a digest of the files' contents, so saving a file unchanged is no new
revision.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

from compiler.api import load_tree
from reconciler.loop import Revision

POLL_SECONDS = 0.2
DEBOUNCE_SECONDS = 0.15
"""How long the folder must stay unchanged before a pass starts."""

Fingerprint = tuple[tuple[str, int, int], ...]


class FolderSource:
    """Reads a policy root from disk and waits for it to change."""

    def __init__(
        self, root: Path, *, poll: float = POLL_SECONDS, debounce: float = DEBOUNCE_SECONDS
    ) -> None:
        self.root = root
        self.poll = poll
        self.debounce = debounce
        self._seen: Fingerprint | None = None

    def __repr__(self) -> str:
        return f"FolderSource({self.root})"

    @property
    def name(self) -> str:
        return str(self.root)

    def read(self) -> Revision:
        self._seen = fingerprint(self.root)
        tree = load_tree(self.root)
        digest = hashlib.sha256()
        for path, content in sorted(tree.files.items()):
            digest.update(path.encode() + b"\0" + hashlib.sha256(content).digest())
        digest.update(tree.config or b"")
        return Revision(id=f"sha256:{digest.hexdigest()[:12]}", tree=tree)

    async def wait_for_change(self) -> None:
        """Return once the folder differs from what `read` saw and has settled."""
        while True:
            await asyncio.sleep(self.poll)
            current = fingerprint(self.root)
            if current == self._seen:
                continue
            while True:
                await asyncio.sleep(self.debounce)
                settled = fingerprint(self.root)
                if settled == current:
                    return
                current = settled


def fingerprint(root: Path) -> Fingerprint:
    """(path, mtime in ns, size) of every file under `root`, dot-directories skipped."""
    if root.is_file():
        return _entry(root, root.name)
    found: list[tuple[str, int, int]] = []
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = sorted(d for d in subdirectories if not d.startswith("."))
        for name in files:
            path = Path(directory, name)
            found.extend(_entry(path, path.relative_to(root).as_posix()))
    return tuple(sorted(found))


def _entry(path: Path, relative: str) -> Fingerprint:
    try:
        stat = path.stat()
    except OSError:
        return ()
    return ((relative, stat.st_mtime_ns, stat.st_size),)
