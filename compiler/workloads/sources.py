"""Which manifest files `--workloads` (or `workloads:` in meshc.yaml) names, and their bytes.

The one place that touches the disk for workloads; everything after works on the bytes.
Files are named relative to the policy root (as the intents are), so a finding's related
location reads like its primary one; standard input is `<stdin>`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from compiler.load.names import printable
from compiler.load.yamlnodes import MAX_FILE_BYTES

STDIN = "<stdin>"
STDIN_ARGUMENT = "-"
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True, slots=True)
class WorkloadSources:
    """The manifests to check the intents against: name -> bytes, in name order."""

    files: Mapping[str, bytes] = field(default_factory=dict)
    skipped: tuple[str, ...] = ()
    """Notes about files under a directory that are not manifests (a README)."""
    default_namespace: str = "default"
    """The namespace of objects that name none (`--workloads-namespace`)."""


NO_WORKLOADS = WorkloadSources()


class WorkloadPathError(Exception):
    """A path that cannot be read as manifests: a usage error (exit 2), with its message."""


def read_workloads(
    paths: Sequence[str],
    *,
    root: Path,
    stdin: Callable[[], bytes],
    default_namespace: str = "default",
) -> WorkloadSources:
    """Read every manifest `paths` names: a file, a directory (every YAML or JSON file
    under it, dot-entries left out) or `-` for standard input."""
    files: dict[str, bytes] = {}
    skipped: list[str] = []
    base = root if root.is_dir() else root.parent
    for given in paths:
        if given == STDIN_ARGUMENT:
            if STDIN in files:
                raise WorkloadPathError("--workloads -: standard input can be read only once")
            files[STDIN] = stdin()
            continue
        path = Path(given)
        if path.is_dir():
            found = _directory(path, base, files, skipped)
            if not found:
                raise WorkloadPathError(
                    f"{printable(given)}: no manifest (*.yaml, *.yml, *.json) under this "
                    "directory; check the path"
                )
        elif path.is_file():
            files[_name(path, base)] = _read(path, given)
        else:
            raise WorkloadPathError(f"{printable(given)}: no such file or directory")
    return WorkloadSources(
        dict(sorted(files.items())), tuple(skipped), default_namespace=default_namespace
    )


def _directory(path: Path, base: Path, files: dict[str, bytes], skipped: list[str]) -> int:
    found = 0
    for directory, subdirs, names in os.walk(path, followlinks=False):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            full = Path(directory) / name
            shown = _name(full, base)
            if not name.endswith(MANIFEST_SUFFIXES) or not full.is_file():
                skipped.append(f"{shown}: skipped (not a YAML or JSON manifest)")
                continue
            files[shown] = _read(full, shown)
            found += 1
    return found


def _read(path: Path, shown: str) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise WorkloadPathError(
                f"{printable(shown)}: {size} bytes, more than the {MAX_FILE_BYTES} a manifest "
                "file may have; split it"
            )
        return path.read_bytes()
    except OSError as exc:
        raise WorkloadPathError(f"{printable(shown)}: cannot read: {exc.strerror}") from None


def _name(path: Path, base: Path) -> str:
    """`path` relative to the policy root (`../k8s/a.yaml` beside it), POSIX, printable."""
    try:
        relative = os.path.relpath(path.resolve(), base.resolve())
    except ValueError:  # another drive on Windows
        relative = str(path.resolve())
    return printable(Path(relative).as_posix())
