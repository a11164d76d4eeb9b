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
from compiler.load.names import printable
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
        _read_into(tree, root, printable(root.name), root.parent.resolve())
        return tree
    resolved_root = root.resolve()
    tree.config, problem = read_config(root)
    if problem is not None:
        tree.problems.append(problem)

    def unreadable_directory(exc: OSError) -> None:
        where = Path(exc.filename or root)
        shown = where.relative_to(root).as_posix() if where.is_relative_to(root) else str(where)
        relative = printable(shown)
        reason = f"cannot read directory: {exc.strerror}"
        tree.problems.append(_unreadable(relative, reason, "check its permissions"))

    for directory, subdirs, names in os.walk(root, onerror=unreadable_directory, followlinks=False):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        if subdirs and len(Path(directory).relative_to(root).parts) >= MAX_DEPTH:
            for name in subdirs:  # os.walk recurses: a deeper tree would exhaust the stack
                deep = printable((Path(directory) / name).relative_to(root).as_posix())
                tree.problems.append(too_deep(deep))
            subdirs[:] = []
        for name in sorted(names):
            full = Path(directory) / name
            relative = printable(full.relative_to(root).as_posix())
            if relative == CONFIG_FILE or not is_candidate(relative):
                continue
            if excludes and excluded(relative, excludes):
                continue
            _read_into(tree, full, relative, resolved_root)
        for name in list(subdirs):
            full = Path(directory) / name
            if full.is_symlink():
                relative = printable(full.relative_to(root).as_posix())
                if not _inside(full, resolved_root):
                    tree.problems.append(_outside(relative))
                    subdirs.remove(name)
    return tree


def read_config(root: Path) -> tuple[bytes | None, Diagnostic | None]:
    """The bytes of `meshc.yaml` at the root (None when absent), or why it cannot be read."""
    config = root / CONFIG_FILE
    try:
        if not config.exists():
            return None, None
        if not config.is_file():
            return None, _unreadable(CONFIG_FILE, "not a regular file", "make meshc.yaml a file")
        with config.open("rb") as handle:
            return handle.read(MAX_FILE_BYTES + 1), None
    except OSError as exc:
        reason = f"cannot read file: {exc.strerror}"
        return None, _unreadable(CONFIG_FILE, reason, "check its permissions")


MAX_DEPTH = 64
"""Directory levels below the policy root that are read (on disk and from Git alike)."""


def too_deep(relative: str) -> Diagnostic:
    """A directory nested deeper than `MAX_DEPTH` levels, which is not read."""
    return _unreadable(
        relative,
        f"directory nested deeper than {MAX_DEPTH} levels below the policy root: not read",
        "flatten the directory structure, or exclude it in meshc.yaml",
    )


def _unreadable(relative: str, problem: str, remedy: str) -> Diagnostic:
    return Diagnostic("MC107", Span(relative), problem, remedy)


def _link_problem(full: Path, relative: str, root: Path) -> Diagnostic | None:
    """Why a symbolic link under the root cannot be read: broken, a loop, or leaving the root."""
    try:
        target = full.resolve(strict=True)
    except FileNotFoundError:
        return _unreadable(
            relative, "broken symbolic link: its target does not exist", "fix or remove the link"
        )
    except (OSError, RuntimeError):
        return _unreadable(relative, "symbolic link loop", "remove the link")
    if not target.is_relative_to(root):
        return _outside(relative)
    return None


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
    problem = _link_problem(full, relative, root) if full.is_symlink() else None
    if problem is not None:
        tree.problems.append(problem)
        return
    try:
        if not full.is_file():
            tree.problems.append(
                _unreadable(relative, "not a regular file", "remove it from the policy root")
            )
            return
        with full.open("rb") as handle:
            tree.files[relative] = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        tree.problems.append(
            _unreadable(relative, f"cannot read file: {exc.strerror}", "check its permissions")
        )
