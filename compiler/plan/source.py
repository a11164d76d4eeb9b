"""Read a policy root straight from Git objects (or the worktree) into a `PolicyTree`.

Plan compares two revisions without checking anything out: the user's worktree and
index are never written. Blob contents are cached by blob id, subtree listings by tree
id and whole policy roots by their root tree id, so re-reading a tree after a one-file
change reads one blob and the trees on its path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TypeVar

from compiler.config import parse_config
from compiler.diagnostics import Diagnostic, Span
from compiler.load.discover import CONFIG_FILE, PolicyTree, excluded, is_candidate
from compiler.load.yamlnodes import MAX_FILE_BYTES

_K = TypeVar("_K")
_V = TypeVar("_V")

WORKTREE = "worktree"
_LINK_MODE = 0o120000
_TREE_KIND, _BLOB_KIND, _LINK_KIND = 0o04, 0o10, 0o12  # mode >> 12; 0o16 is a submodule
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
    listings: dict[bytes, Listing] = field(default_factory=dict)
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
        raise PlanInputError(f"--path {path}: must be a relative path inside the repository")
    text = pure.as_posix()
    return "" if text == "." else text.strip("/")


def resolve_revision(source: GitSource, ref: str) -> Revision:
    """The commit a ref names, with a message that says why when it cannot be found."""
    import git

    repo: git.Repo = source.repo  # type: ignore[assignment]
    try:
        commit = repo.commit(ref)
    except (git.BadName, ValueError, git.BadObject, IndexError):
        raise PlanInputError(_missing_ref_message(repo, ref)) from None
    except git.GitCommandError as exc:
        raise PlanInputError(
            f"{ref}: git cannot read it ({exc.stderr.strip() or exc}); check the ref"
        ) from None
    return Revision(ref, commit.hexsha, commit.tree.hexsha)


def _missing_ref_message(repo: object, ref: str) -> str:
    shallow = Path(str(getattr(repo, "git_dir", ""))) / "shallow"
    if shallow.is_file():
        return (
            f"{ref}: no such commit in this repository; it is a shallow clone and may lack it — "
            "fetch more history (`git fetch --deepen=N` or `git fetch --unshallow`, or "
            "actions/checkout with fetch-depth: 0)"
        )
    return f"{ref}: no such branch, tag or commit; check the name (`git rev-parse {ref}`)"


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
    for part in prefix.split("/") if prefix else ():
        found = [(sha, mode) for sha, mode, name in _entries(repo, current) if name == part]
        if not found:
            raise MissingRoot(f"{revision.label}: has no directory {prefix!r}; check --path")
        current, mode = found[0]
        if mode >> 12 != _TREE_KIND:
            raise PlanInputError(f"{revision.label}: {prefix!r} is not a directory; check --path")
    return current


def _entries(repo: object, tree_id: bytes) -> list[tuple[bytes, int, str]]:
    """One tree object's records (binary id, mode, name), parsed by gitpython."""
    from git.objects.fun import tree_entries_from_data

    stream = repo.odb.stream(tree_id)  # type: ignore[attr-defined]
    data = stream.read()
    if stream.type != b"tree":
        raise PlanInputError(f"{tree_id.hex()}: a {stream.type.decode()} where a tree was expected")
    return tree_entries_from_data(data)


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
        files[relative] = _blob_bytes(repo, blob_id, blobs)
    return RootSnapshot(files, tuple(problems), config)


def _listing(repo: object, tree_id: bytes, blobs: BlobCache) -> Listing:
    """Every candidate file (YAML, not a dotfile; a link too) below a tree: dot-directories
    are pruned like discovery prunes them, so a name's own check is the path's
    `is_candidate`; submodules are skipped. Memoised by tree id: an unchanged subtree
    is not read again."""
    hit = blobs.listings.get(tree_id)
    if hit is not None:
        return hit
    out: list[tuple[str, str, int]] = []
    for sha, mode, name in _entries(repo, tree_id):
        kind = mode >> 12
        if kind == _TREE_KIND and not name.startswith("."):
            out.extend((f"{name}/{path}", b, m) for path, b, m in _listing(repo, sha, blobs))
        elif kind in (_BLOB_KIND, _LINK_KIND) and is_candidate(name):
            out.append((name, sha.hex(), mode))
    listing = tuple(out)
    _put(blobs.listings, tree_id, listing, _LISTING_CACHE_SIZE)
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
    if not root.is_dir():
        raise PlanInputError(f"{root}: no such directory in the worktree; check --path")
    listed = _ls_files(root)
    tree = PolicyTree()
    config_path = root / CONFIG_FILE
    if CONFIG_FILE in listed and config_path.is_file() and not config_path.is_symlink():
        tree.config = _read_file(config_path)
    excludes = parse_config(tree.config)[0].excludes if tree.config is not None else []
    for relative in sorted(listed):
        if relative == CONFIG_FILE or not is_candidate(relative):
            continue
        if excludes and excluded(relative, excludes):
            continue
        full = root / relative
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
                    "check permissions",
                )
            )
    return tree


def _read_file(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(MAX_FILE_BYTES + 1)


def _ls_files(root: Path) -> set[str]:
    import git

    try:
        listing = git.Git(str(root)).execute(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "."],
            stdout_as_string=False,
        )
    except git.GitCommandError as exc:
        message = exc.stderr.strip() if isinstance(exc.stderr, str) else str(exc)
        raise PlanInputError(f"{root}: git cannot list the worktree ({message})") from None
    raw = listing if isinstance(listing, bytes) else str(listing).encode()
    return {p for p in raw.decode("utf-8", "surrogateescape").split("\0") if p}
