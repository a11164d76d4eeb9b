"""Discovery: which files under the policy root are read, and their bytes.

The result is a `PolicyTree`, a plain mapping of relative POSIX paths to bytes, so the
same compiler runs on a working directory, a Git tree or a test's dictionary.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path

from compiler.diagnostics import Diagnostic, Span
from compiler.load.yamlnodes import MAX_FILE_BYTES

CONFIG_FILE = "meshc.yaml"
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(slots=True)
class PolicyTree:
    """The files of one policy root: relative path -> content, plus discovery problems."""

    files: dict[str, bytes] = field(default_factory=dict)
    problems: list[Diagnostic] = field(default_factory=list)
    config: bytes | None = None


def is_candidate(relative: str) -> bool:
    """A YAML file not inside a dot-directory (and not a dotfile)."""
    parts = relative.split("/")
    return relative.endswith(YAML_SUFFIXES) and not any(p.startswith(".") for p in parts)


def excluded(relative: str, patterns: list[str]) -> bool:
    for pattern in patterns:
        pattern = pattern.rstrip("/")
        if fnmatch.fnmatchcase(relative, pattern) or fnmatch.fnmatchcase(relative, pattern + "/*"):
            return True
        if relative.startswith(pattern + "/"):
            return True
    return False


def discover_tree(root: Path, *, excludes: list[str] | None = None) -> PolicyTree:
    """Read every candidate YAML file under `root` (a directory or one file)."""
    tree = PolicyTree()
    if root.is_file():
        _read_into(tree, root, root.name, root.parent.resolve())
        return tree
    resolved_root = root.resolve()
    config = root / CONFIG_FILE
    if config.is_file():
        tree.config = config.read_bytes()[: MAX_FILE_BYTES + 1]
    for directory, subdirs, names in os.walk(root, followlinks=False):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in sorted(names):
            full = Path(directory) / name
            relative = full.relative_to(root).as_posix()
            if relative == CONFIG_FILE or not is_candidate(relative):
                continue
            if excludes and excluded(relative, excludes):
                continue
            _read_into(tree, full, relative, resolved_root)
        for name in list(subdirs):
            full = Path(directory) / name
            if full.is_symlink():
                relative = full.relative_to(root).as_posix()
                if not _inside(full, resolved_root):
                    tree.problems.append(_outside(relative))
                    subdirs.remove(name)
    return tree


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
    except (ValueError, OSError, RuntimeError):
        return False
    return True


def _outside(relative: str) -> Diagnostic:
    return Diagnostic(
        "MC109",
        Span(relative),
        "symbolic link points outside the policy root",
        "copy the file into the policy root; meshc never follows links out of it",
    )


def _read_into(tree: PolicyTree, full: Path, relative: str, root: Path) -> None:
    if full.is_symlink() and not _inside(full, root):
        tree.problems.append(_outside(relative))
        return
    try:
        if not full.is_file():
            tree.problems.append(
                Diagnostic("MC107", Span(relative), "not a regular file", "remove it from the policy root")
            )
            return
        with full.open("rb") as handle:
            tree.files[relative] = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        tree.problems.append(
            Diagnostic("MC107", Span(relative), f"cannot read file: {exc.strerror}", "check permissions")
        )
