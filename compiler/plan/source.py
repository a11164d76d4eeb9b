"""Read a policy root straight from Git objects (or the worktree) into a `PolicyTree`.

Plan compares two revisions without checking anything out: the user's worktree and
index are never written. Blob contents are cached by blob id, so re-reading a tree
after a one-file change reads one blob.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from compiler.config import parse_config
from compiler.diagnostics import Diagnostic, Span
from compiler.load.discover import CONFIG_FILE, PolicyTree, excluded, is_candidate
from compiler.load.yamlnodes import MAX_FILE_BYTES

WORKTREE = "worktree"
_LINK_MODE = 0o120000
_SUBMODULE_MODE = 0o160000


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


@dataclass(slots=True)
class BlobCache:
    """blob id -> the first MAX_FILE_BYTES + 1 bytes of the blob."""

    entries: dict[str, bytes] = field(default_factory=dict)


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


def read_commit_tree(source: GitSource, revision: Revision, blobs: BlobCache) -> PolicyTree:
    """The policy root at `revision`, read from Git objects only."""
    import git

    repo: git.Repo = source.repo  # type: ignore[assignment]
    tree_obj = repo.commit(revision.commit).tree
    if source.prefix:
        try:
            tree_obj = tree_obj / source.prefix
        except KeyError:
            raise MissingRoot(
                f"{revision.label}: has no directory {source.prefix!r}; check --path"
            ) from None
        if tree_obj.type != "tree":
            raise PlanInputError(
                f"{revision.label}: {source.prefix!r} is not a directory; check --path"
            )
    entries: dict[str, tuple[str, int]] = {}
    _walk(tree_obj, "", entries)
    tree = PolicyTree()
    config = entries.pop(CONFIG_FILE, None)
    if config is not None and config[1] != _LINK_MODE:
        tree.config = _blob_bytes(repo, config[0], blobs)
    excludes = parse_config(tree.config)[0].excludes if tree.config is not None else []
    for relative in sorted(entries):
        blob_id, mode = entries[relative]
        if not is_candidate(relative) or (excludes and excluded(relative, excludes)):
            continue
        if mode == _LINK_MODE:
            tree.problems.append(_link_problem(relative))
            continue
        tree.files[relative] = _blob_bytes(repo, blob_id, blobs)
    return tree


def _walk(tree_obj: object, base: str, out: dict[str, tuple[str, int]]) -> None:
    """Collect blob paths; dot-directories are pruned like discovery prunes them."""
    for entry in tree_obj.trees:  # type: ignore[attr-defined]
        if entry.name.startswith("."):
            continue
        _walk(entry, f"{base}{entry.name}/", out)
    for entry in tree_obj.blobs:  # type: ignore[attr-defined]
        if entry.mode == _SUBMODULE_MODE:
            continue
        out[f"{base}{entry.name}"] = (entry.hexsha, entry.mode)


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
