"""Read a policy root straight from Git objects (or the worktree) into a `PolicyTree`.

Plan compares two revisions without checking anything out: the user's worktree and
index are never written. Blob contents are cached by blob id, subtree listings by tree
id and whole policy roots by their root tree id, so re-reading a tree after a one-file
change reads one blob and the trees on its path.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TypeVar

from compiler.config import parse_config
from compiler.diagnostics import Diagnostic, Span
from compiler.load.discover import (
    CONFIG_FILE,
    MAX_DEPTH,
    PolicyTree,
    excluded,
    is_candidate,
    too_deep,
)
from compiler.load.names import printable
from compiler.load.yamlnodes import MAX_FILE_BYTES

_K = TypeVar("_K")
_V = TypeVar("_V")

WORKTREE = "worktree"
_LINK_MODE = 0o120000
_DEEP_MODE = -1
"""A listing entry for a directory below `MAX_DEPTH`, which is reported, not read."""
_TREE_KIND, _BLOB_KIND, _LINK_KIND, _MODULE_KIND = 0o04, 0o10, 0o12, 0o16  # mode >> 12
_LISTING_CACHE_SIZE = 20_000
_ROOT_CACHE_SIZE = 32


class PlanInputError(Exception):
    """A problem with what the user asked plan to compare (ref, repository, path)."""


class MissingRoot(PlanInputError):
    """The revision has no policy root directory (e.g. the base before it was added)."""


@dataclass(frozen=True, slots=True)
class Revision:
    """Which revision a side is: a ref the user named and the commit it resolved to."""

    label: str
    commit: str | None
    tree_id: str | None


Listing = tuple[tuple[str, str, int], ...]
"""(path relative to the listed tree, blob id, mode) of every blob below a tree."""


@dataclass(frozen=True, slots=True)
class RootSnapshot:
    """What `read_commit_tree` made of one policy root tree; shared, never modified."""

    files: dict[str, bytes]
    problems: tuple[Diagnostic, ...]
    config: bytes | None


@dataclass(slots=True)
class CommitTree(PolicyTree):
    """A policy root read from Git objects. Its content is a function of `root_id`, the
    policy root's tree id, alone (the config and its excludes are read from that tree), so
    a compiled side can be keyed by the id instead of hashing every file."""

    root_id: str = ""
    snapshot: RootSnapshot | None = field(default=None, repr=False, compare=False)

    def pristine(self) -> bool:
        """Whether the tree still holds exactly what was read (nobody edited it since):
        only then does `root_id` stand for its content. Cheap: the values are the very
        bytes objects of the snapshot, so the comparison stops at identity."""
        snap = self.snapshot
        return (
            snap is not None
            and self.config == snap.config
            and self.files == snap.files
            and tuple(self.problems) == snap.problems
        )


@dataclass(slots=True)
class BlobCache:
    """Git reads memoised by object id (a Git id names its content, so entries never go
    stale): blobs' first MAX_FILE_BYTES + 1 bytes, subtrees' blob listings, and what
    whole policy roots were read as."""

    entries: dict[str, bytes] = field(default_factory=dict)
    listings: dict[tuple[bytes, int], Listing] = field(default_factory=dict)
    """By (tree id, depth below the policy root): the depth decides where reading stops."""
    roots: dict[bytes, RootSnapshot] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GitSource:
    """An opened repository and the policy root inside it (a POSIX path, '' = top level)."""

    repo: object  # git.Repo; kept untyped because gitpython ships no stubs
    top: Path
    prefix: str


def open_source(repo_dir: Path, path: str | None) -> GitSource:
    """Open the repository containing `repo_dir` and locate the policy root.

    The policy root is `--path` (relative to the repository's top level) when given;
    otherwise it is `repo_dir` itself, relative to the top level — so `meshc plan`
    run in (or pointed at) a directory plans the same root `meshc lint` would lint there.
    """
    import git

    if not repo_dir.exists():
        raise PlanInputError(f"{repo_dir}: no such directory; pass --repo with a Git repository")
    try:
        repo = git.Repo(repo_dir, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise PlanInputError(
            f"{repo_dir}: not a Git repository; run plan inside a clone or pass --repo DIR"
        ) from None
    if repo.bare or repo.working_tree_dir is None:
        raise PlanInputError(f"{repo_dir}: a bare repository has no worktree; pass --head REF")
    top = Path(repo.working_tree_dir).resolve()
    if path is not None:
        prefix = _clean_prefix(path)
    else:
        try:
            prefix = repo_dir.resolve().relative_to(top).as_posix()
        except ValueError:
            prefix = ""
    prefix = "" if prefix == "." else prefix
    return GitSource(repo, top, prefix)


def _clean_prefix(path: str) -> str:
    pure = PurePosixPath(path.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts:
        raise PlanInputError(
            f"--path {printable(path)}: must be a relative path inside the repository; "
            "name the policy root relative to the repository's top level"
        )
    text = pure.as_posix()
    return "" if text == "." else text.strip("/")


def resolve_revision(source: GitSource, ref: str) -> Revision:
    """The commit a ref names, with a message that says why when it cannot be found.

    `git rev-parse` is the authority on revision syntax (`main~2`, `v1^{}`, `@{-1}`,
    `:/msg`); it also says when a name is ambiguous (a branch and a tag) or names a tree
    or a blob, which plan refuses rather than guessing which side the user meant."""
    import git

    repo: git.Repo = source.repo  # type: ignore[assignment]
    shown = printable(ref)
    if not ref.strip():
        raise PlanInputError("--base/--head: empty revision; name a branch, tag or commit")
    if _FULL_ID.fullmatch(ref):
        found = _commit_by_id(repo, ref)
        if found is not None:
            return found
    status, out, err = repo.git.execute(
        ["git", "rev-parse", "--verify", "--end-of-options", f"{ref}^{{commit}}"],
        with_extended_output=True,
        with_exceptions=False,
    )
    err_text = str(err)
    if "ambiguous" in err_text:
        raise PlanInputError(_ambiguous_message(shown, err_text))
    if status != 0:
        raise PlanInputError(_missing_ref_message(repo, ref, err_text))
    sha = str(out).strip()
    try:
        commit = repo.commit(sha)
        tree_id = commit.tree.hexsha
    except (ValueError, git.BadObject, git.BadName) as exc:
        raise PlanInputError(
            f"{shown}: commit {sha[:12]} cannot be read ({exc}); check the repository with "
            "`git fsck`, or fetch the missing objects"
        ) from None
    return Revision(shown, sha, tree_id)


_FULL_ID = re.compile(r"[0-9a-f]{40}")


def _commit_by_id(repo: object, sha: str) -> Revision | None:
    """A full commit id read straight from the object database (what `git rev-parse` would
    answer, without a process per side of every re-plan); None for anything else."""
    import git

    try:
        commit = repo.commit(sha)  # type: ignore[attr-defined]
        if commit.type != "commit":
            return None
        return Revision(sha, sha, commit.tree.hexsha)
    except (ValueError, git.BadObject, git.BadName):
        return None


def _ambiguous_message(shown: str, err: str) -> str:
    if "short object ID" in err:
        return (
            f"{shown}: ambiguous abbreviated object id (several objects start with it); "
            "pass more hex digits"
        )
    return (
        f"{shown}: ambiguous: more than one ref has this name (e.g. a branch and a tag); "
        f"name one fully, e.g. refs/heads/{shown} or refs/tags/{shown}"
    )


def _missing_ref_message(repo: object, ref: str, err: str) -> str:
    shown = printable(ref)
    peeled = re.search(r"dereferences to (\w+) type", err)
    if peeled is not None:
        return (
            f"{shown}: names a {peeled.group(1)}, not a commit; plan reads the policy root "
            "from a commit: pass a branch, tag or commit id"
        )
    if not _has_commits(repo):
        return (
            f"{shown}: the repository has no commits yet; commit the policy root first, "
            "then plan against that commit"
        )
    shallow = Path(str(getattr(repo, "git_dir", ""))) / "shallow"
    if shallow.is_file():
        return (
            f"{shown}: no such commit in this repository; it is a shallow clone and may lack "
            "it — fetch more history (`git fetch --deepen=N` or `git fetch --unshallow`, or "
            "actions/checkout with fetch-depth: 0)"
        )
    if any(mark in ref for mark in "~^@:"):
        return (
            f"{shown}: no such commit (the history may be shorter than the ref asks for); "
            f"check it with `git rev-parse {shown}`"
        )
    return f"{shown}: no such branch, tag or commit; check the name (`git rev-parse {shown}`)"


def _has_commits(repo: object) -> bool:
    """Whether any ref or HEAD names a commit (a fresh `git init` has none)."""
    status, out, _ = repo.git.execute(  # type: ignore[attr-defined]
        ["git", "for-each-ref", "--count=1", "--format=%(objectname)"],
        with_extended_output=True,
        with_exceptions=False,
    )
    if status == 0 and str(out).strip():
        return True
    status, _, _ = repo.git.execute(  # type: ignore[attr-defined]
        ["git", "rev-parse", "--verify", "--quiet", "HEAD"],
        with_extended_output=True,
        with_exceptions=False,
    )
    return bool(status == 0)


def read_commit_tree(source: GitSource, revision: Revision, blobs: BlobCache) -> CommitTree:
    """The policy root at `revision`, read from Git objects only."""
    import git

    repo: git.Repo = source.repo  # type: ignore[assignment]
    root = _policy_root(repo, revision, source.prefix)
    snapshot = blobs.roots.get(root)
    if snapshot is None:
        snapshot = _read_root(repo, root, blobs)
        _put(blobs.roots, root, snapshot, _ROOT_CACHE_SIZE)
    return CommitTree(
        files=dict(snapshot.files),
        problems=list(snapshot.problems),
        config=snapshot.config,
        root_id=root.hex(),
        snapshot=snapshot,
    )


def _policy_root(repo: object, revision: Revision, prefix: str) -> bytes:
    """The binary id of the policy root's tree at `revision`."""
    tree_id = revision.tree_id
    if tree_id is None:
        tree_id = repo.commit(revision.commit).tree.hexsha  # type: ignore[attr-defined]
    current = bytes.fromhex(tree_id)
    parts = prefix.split("/") if prefix else []
    for depth, part in enumerate(parts):
        found = [(sha, mode) for sha, mode, name in _entries(repo, current) if name == part]
        where = "/".join(parts[: depth + 1])
        if not found:
            raise MissingRoot(
                f"--path {printable(prefix)}: {printable(revision.label)} has no directory "
                f"{printable(where)!r}; check --path (relative to the repository's top level)"
            )
        current, mode = found[0]
        kind = mode >> 12
        if kind != _TREE_KIND:
            raise PlanInputError(_not_a_directory(revision, prefix, where, kind))
    return current


def _not_a_directory(revision: Revision, prefix: str, where: str, kind: int) -> str:
    at = f"--path {printable(prefix)}: {printable(where)!r} at {printable(revision.label)}"
    if kind == _MODULE_KIND:
        return (
            f"{at} is a submodule; plan reads one repository: run it inside the submodule "
            f"(--repo {printable(where)})"
        )
    if kind == _LINK_KIND:
        return (
            f"{at} is a symbolic link; plan reads Git objects and does not follow links: "
            "pass the directory it points to"
        )
    return f"{at} is a file, not a directory; pass the policy root directory"


def _entries(repo: object, tree_id: bytes) -> list[tuple[bytes, int, str]]:
    """One tree object's records (binary id, mode, name). Parsed here rather than by
    gitpython, which rejects a whole tree over one odd name (`GIT~1`, a colon); names
    that are not printable UTF-8 are escaped (`printable`) so no report carries them raw."""
    stream = repo.odb.stream(tree_id)  # type: ignore[attr-defined]
    data = stream.read()
    if stream.type != b"tree":
        raise PlanInputError(
            f"object {tree_id.hex()}: a {stream.type.decode()} where a tree was expected; "
            "check the repository with `git fsck`"
        )
    try:
        return _parse_tree(data)
    except ValueError:
        raise PlanInputError(
            f"tree {tree_id.hex()}: corrupt tree object; check the repository with `git fsck`"
        ) from None


def _parse_tree(data: bytes) -> list[tuple[bytes, int, str]]:
    """`<octal mode> <name>\\0<20-byte id>` records, back to back."""
    out: list[tuple[bytes, int, str]] = []
    offset, end = 0, len(data)
    while offset < end:
        space = data.index(b" ", offset)
        nul = data.index(b"\0", space)
        sha = data[nul + 1 : nul + 21]
        if len(sha) != 20:
            raise ValueError("truncated tree entry")
        out.append((sha, int(data[offset:space], 8), entry_name(data[space + 1 : nul])))
        offset = nul + 21
    return out


def entry_name(raw: bytes) -> str:
    """A file name from Git or the file system as text: UTF-8, odd bytes escaped."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", "surrogateescape")
    return printable(text)


def _read_root(repo: object, root: bytes, blobs: BlobCache) -> RootSnapshot:
    entries = {path: (blob_id, mode) for path, blob_id, mode in _listing(repo, root, blobs)}
    config = None
    found = entries.pop(CONFIG_FILE, None)
    if found is not None and found[1] != _LINK_MODE:
        config = _blob_bytes(repo, found[0], blobs)
    excludes = parse_config(config)[0].excludes if config is not None else []
    files: dict[str, bytes] = {}
    problems: list[Diagnostic] = []
    for relative in sorted(entries):  # candidates only: `_listing` dropped the rest
        blob_id, mode = entries[relative]
        if excludes and excluded(relative, excludes):
            continue
        if mode == _LINK_MODE:
            problems.append(_link_problem(relative))
            continue
        if mode == _DEEP_MODE:
            problems.append(too_deep(relative))
            continue
        files[relative] = _blob_bytes(repo, blob_id, blobs)
    return RootSnapshot(files, tuple(problems), config)


def _listing(repo: object, tree_id: bytes, blobs: BlobCache, depth: int = 0) -> Listing:
    """Every candidate file (YAML, not a dotfile; a link too) below a tree: dot-directories
    are pruned like discovery prunes them, so a name's own check is the path's
    `is_candidate`; submodules are skipped; a directory deeper than `MAX_DEPTH` becomes
    one `_DEEP_MODE` entry. Memoised by tree id and depth: an unchanged subtree is not
    read again."""
    hit = blobs.listings.get((tree_id, depth))
    if hit is not None:
        return hit
    out: list[tuple[str, str, int]] = []
    for sha, mode, name in _entries(repo, tree_id):
        kind = mode >> 12
        if kind == _TREE_KIND and not name.startswith("."):
            if depth + 1 > MAX_DEPTH:
                out.append((name, "", _DEEP_MODE))
                continue
            below = _listing(repo, sha, blobs, depth + 1)
            out.extend((f"{name}/{path}", b, m) for path, b, m in below)
        elif kind in (_BLOB_KIND, _LINK_KIND) and is_candidate(name):
            out.append((name, sha.hex(), mode))
    listing = tuple(out)
    _put(blobs.listings, (tree_id, depth), listing, _LISTING_CACHE_SIZE)
    return listing


def _put(table: dict[_K, _V], key: _K, value: _V, limit: int) -> None:
    """Insert, dropping the oldest entries past `limit` (dicts keep insertion order)."""
    table[key] = value
    while len(table) > limit:
        del table[next(iter(table))]


def _blob_bytes(repo: object, blob_id: str, blobs: BlobCache) -> bytes:
    hit = blobs.entries.get(blob_id)
    if hit is None:
        stream = repo.odb.stream(bytes.fromhex(blob_id))  # type: ignore[attr-defined]
        hit = stream.read(MAX_FILE_BYTES + 1)
        # Drain an oversized blob: gitpython shares one `git cat-file --batch` pipe, and
        # unread bytes would be taken for the start of the next object.
        while len(hit) > MAX_FILE_BYTES and stream.read(1 << 20):
            pass
        blobs.entries[blob_id] = hit
    return hit


def _link_problem(relative: str) -> Diagnostic:
    return Diagnostic(
        "MC109",
        Span(relative),
        "symbolic link in the Git tree; plan reads Git objects and does not follow links",
        "commit the file itself instead of a link to it",
    )


def read_worktree(source: GitSource) -> PolicyTree:
    """The policy root as the worktree has it: tracked files with uncommitted edits plus
    untracked files that Git does not ignore. Read-only: neither the index nor any file
    is written (`git ls-files` only reads the index)."""
    root = source.top / source.prefix if source.prefix else source.top
    _check_worktree_root(source, root)
    listed = _ls_files(root)
    tree = PolicyTree()
    config_path = root / CONFIG_FILE
    if CONFIG_FILE in listed and config_path.is_file() and not config_path.is_symlink():
        tree.config = _read_file(config_path)
    excludes = parse_config(tree.config)[0].excludes if tree.config is not None else []
    deep: set[str] = set()
    for relative in sorted(listed):
        if relative == CONFIG_FILE or not is_candidate(relative):
            continue
        if excludes and excluded(relative, excludes):
            continue
        parts = relative.split("/")
        if len(parts) > MAX_DEPTH + 1:  # as discovery and Git trees stop: report the directory
            directory = "/".join(parts[: MAX_DEPTH + 1])
            if directory not in deep:
                deep.add(directory)
                tree.problems.append(too_deep(directory))
            continue
        full = root / listed[relative]
        if full.is_symlink():
            tree.problems.append(_link_problem(relative))
            continue
        if not full.is_file():
            continue  # deleted in the worktree but still in the index
        try:
            tree.files[relative] = _read_file(full)
        except OSError as exc:
            tree.problems.append(
                Diagnostic(
                    "MC107",
                    Span(relative),
                    f"cannot read file: {exc.strerror}",
                    "check its permissions (plan reads every policy file in the worktree)",
                )
            )
    return tree


def _check_worktree_root(source: GitSource, root: Path) -> None:
    """The worktree's policy root must be a plain directory of this repository: a link
    would plan files from elsewhere, a nested repository (a submodule) another history."""
    shown = printable(source.prefix)
    current = source.top
    for part in source.prefix.split("/") if source.prefix else ():
        current = current / part
        if current.is_symlink():
            raise PlanInputError(
                f"--path {shown}: {printable(str(current))} is a symbolic link in the worktree; "
                "plan does not follow links: pass the directory it points to"
            )
    if not root.is_dir():
        what = "a file, not a directory" if root.exists() else "no such directory"
        raise PlanInputError(
            f"{printable(str(root))}: {what} in the worktree; check --path (relative to the "
            "repository's top level)"
        )
    if source.prefix and (root / ".git").exists():
        raise PlanInputError(
            f"--path {shown}: a submodule or nested repository in the worktree; plan reads one "
            f"repository: run it inside that one (--repo {printable(str(root))})"
        )


def _read_file(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(MAX_FILE_BYTES + 1)


def _ls_files(root: Path) -> dict[str, str]:
    """Every path `git ls-files` lists under `root`: its reported (printable) name mapped
    to the name on disk (which may hold bytes that are not UTF-8)."""
    import git

    try:
        listing = git.Git(str(root)).execute(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "."],
            stdout_as_string=False,
        )
    except git.GitCommandError as exc:
        message = exc.stderr.strip() if isinstance(exc.stderr, str) else str(exc)
        raise PlanInputError(
            f"{printable(str(root))}: git cannot list the worktree ({printable(message)}); "
            "check the repository with `git status`"
        ) from None
    raw = listing if isinstance(listing, bytes) else str(listing).encode()
    return {entry_name(p): os.fsdecode(p) for p in raw.split(b"\0") if p}
