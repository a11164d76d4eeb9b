"""The Git source: a repository followed at a branch, a tag or the remote's HEAD.

The repository is mirrored into a bare repository under the reconciler's state directory
(never a worktree: nothing is checked out, and a user's clone is never touched); each
fetch reads the policy root straight from the fetched commit's objects, with the same
reader `meshc plan` uses, so the reconciler compiles exactly what `meshc plan` showed.

Credentials never reach an argument list, a log line or an error: an HTTPS token is
handed to git through an askpass program that reads it from the environment of the one
git process that needs it, an SSH key through `GIT_SSH_COMMAND`; URLs are shown with any
user-info removed.
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from compiler.plan.source import (
    BlobCache,
    CommitTree,
    GitSource,
    PlanInputError,
    read_commit_tree,
)
from compiler.plan.source import Revision as GitRevision
from reconciler.errors import MeshdError
from reconciler.loop import Revision
from reconciler.source.signatures import SignaturePolicy, SignatureVerdict

FETCH_TIMEOUT_SECONDS = 120
_HEAD_SYMREF = re.compile(r"^ref: (refs/heads/\S+)\tHEAD$", re.MULTILINE)


class SourceError(MeshdError):
    """The repository cannot be fetched or read (exit 1: the revision is not applied)."""

    code = 1


@dataclass(frozen=True, slots=True)
class Credentials:
    """How to authenticate to the remote; the secret itself is only ever read from a file."""

    token_file: Path | None = None
    """HTTPS: a file holding a token (or `user:token`)."""
    ssh_key_file: Path | None = None
    known_hosts_file: Path | None = None

    def __repr__(self) -> str:
        return "Credentials(<redacted>)"


@dataclass(frozen=True, slots=True)
class Fetched:
    """One fetched revision: the commit, which ref it came from, and its policy root."""

    commit: str
    ref: str
    """The ref followed (`refs/heads/main`, `refs/tags/v1`), as resolved at this fetch."""
    tree: CommitTree
    signature: SignatureVerdict | None
    """None when no signature policy is configured."""


def redact(url: str) -> str:
    """`url` without user-info (`https://user:token@host/x` → `https://host/x`)."""
    parts = urlsplit(url)
    if parts.scheme and "@" in parts.netloc:
        host = parts.netloc.rsplit("@", 1)[1]
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return url


class GitRepositorySource:
    """Mirrors `url` into `mirror_dir` and reads the policy root at `path` of `ref`."""

    def __init__(
        self,
        url: str,
        *,
        mirror_dir: Path,
        ref: str | None = None,
        path: str = "",
        credentials: Credentials | None = None,
        signatures: SignaturePolicy | None = None,
    ) -> None:
        self.url = url
        self.shown = redact(url)
        self.mirror_dir = mirror_dir
        self.ref = ref
        self.path = path.strip("/")
        self.credentials = credentials or Credentials()
        self.signatures = signatures
        self._blobs = BlobCache()
        self._repo: object | None = None
        self.interval = 30.0
        """Seconds between fetches when nothing asks for one sooner."""
        self.requested: Callable[[], bool] = lambda: False
        """Polled while waiting: True when a pass was asked for (`meshd reconcile`)."""
        self._trigger: asyncio.Event | None = None

    def __repr__(self) -> str:
        return f"GitRepositorySource({self.shown!r}, ref={self.ref!r})"

    @property
    def name(self) -> str:
        where = f"{self.shown}#{self.ref or 'HEAD'}"
        return f"{where}:{self.path}" if self.path else where

    def read(self) -> Revision:
        """The loop's source phase: fetch, then refuse a revision the signature policy
        does not accept (reported with the reason, never applied)."""
        fetched = self.fetch()
        verdict = fetched.signature
        if verdict is not None and not verdict.accepted:
            raise SourceError(f"{self.shown}: refused by the signature policy: {verdict.reason}")
        return Revision(fetched.commit, fetched.tree)

    def trigger(self) -> None:
        """Ask for a fetch now (the webhook calls this); call from the loop's thread."""
        if self._trigger is not None:
            self._trigger.set()

    async def wait_for_change(self) -> None:
        """Return when the interval has passed, the webhook fired or a pass was asked for."""
        if self._trigger is None:
            self._trigger = asyncio.Event()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.interval
        while (left := deadline - loop.time()) > 0:
            if self.requested():
                return
            try:
                await asyncio.wait_for(self._trigger.wait(), timeout=min(0.5, left))
            except TimeoutError:
                continue
            self._trigger.clear()
            return

    def fetch(self) -> Fetched:
        """Fetch the remote and read the followed ref's commit (phases in order)."""
        self._ensure_mirror()
        followed = self._followed_ref()
        self._git("fetch", "--prune", "--force", "--tags", "origin", *_REFSPECS, remote=True)
        commit = self._commit_of(followed)
        verdict = self.signatures.verify(self.mirror_dir, commit) if self.signatures else None
        tree = self._read_tree(commit, followed)
        return Fetched(commit, followed, tree, verdict)

    # -- phases -------------------------------------------------------------------------

    def _ensure_mirror(self) -> None:
        if (self.mirror_dir / "HEAD").is_file():
            self._git("remote", "set-url", "origin", self.url)
            return
        self.mirror_dir.mkdir(parents=True, exist_ok=True)
        self._git("init", "--quiet", "--bare")
        self._git("remote", "add", "origin", self.url)

    def _followed_ref(self) -> str:
        """The full ref to follow: the named branch or tag, else the remote's HEAD branch."""
        if self.ref is None:
            listing = self._git("ls-remote", "--symref", "origin", "HEAD", remote=True)
            found = _HEAD_SYMREF.search(listing)
            if found is None:
                raise SourceError(
                    f"{self.shown}: the remote has no HEAD branch (an empty repository?); "
                    "push a commit, or follow a branch with --ref"
                )
            return found.group(1)
        if self.ref.startswith("refs/"):
            return self.ref
        listing = self._git("ls-remote", "origin", self.ref, remote=True)
        names = {line.split("\t", 1)[1] for line in listing.splitlines() if "\t" in line}
        for candidate in (f"refs/heads/{self.ref}", f"refs/tags/{self.ref}"):
            if candidate in names:
                return candidate
        raise SourceError(
            f"{self.shown}: no branch or tag named {self.ref!r}; check --ref "
            "(`git ls-remote` lists what the remote has)"
        )

    def _commit_of(self, followed: str) -> str:
        local = _local_ref(followed)
        out = self._git("rev-parse", "--verify", "--quiet", f"{local}^{{commit}}", check=False)
        sha = out.strip()
        if not re.fullmatch(r"[0-9a-f]{40}", sha):
            raise SourceError(f"{self.shown}: {followed} was not fetched; retry the fetch")
        return sha

    def _read_tree(self, commit: str, followed: str) -> CommitTree:
        import git

        if self._repo is None:  # one for the source's life: each holds git cat-file processes
            self._repo = git.Repo(self.mirror_dir)
        source = GitSource(self._repo, self.mirror_dir, self.path)
        revision = GitRevision(followed, commit, None)
        try:
            return read_commit_tree(source, revision, self._blobs)
        except PlanInputError as exc:
            raise SourceError(f"{self.shown} at {commit[:12]}: {exc}") from None

    # -- git ----------------------------------------------------------------------------

    def _git(self, *args: str, remote: bool = False, check: bool = True) -> str:
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"}
        env.pop("GIT_DIR", None)
        with tempfile.TemporaryDirectory(prefix="meshd-git-") as scratch:
            if remote:
                env.update(self._auth_env(Path(scratch)))
            try:
                result = subprocess.run(
                    ["git", "--git-dir", str(self.mirror_dir), *args],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=FETCH_TIMEOUT_SECONDS,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise SourceError(
                    f"{self.shown}: git {args[0]} took over {FETCH_TIMEOUT_SECONDS} s; "
                    "check the network and the remote"
                ) from None
            except OSError as exc:
                raise SourceError(f"git: cannot run ({exc.strerror}); install git") from None
        if check and result.returncode != 0:
            detail = _last_line(result.stderr).replace(self.url, self.shown)
            raise SourceError(f"{self.shown}: git {args[0]} failed: {detail}")
        return result.stdout

    def _auth_env(self, scratch: Path) -> dict[str, str]:
        env: dict[str, str] = {}
        creds = self.credentials
        if creds.token_file is not None:
            env["MESHD_GIT_TOKEN"] = _read_secret(creds.token_file)
            askpass = scratch / "askpass"
            askpass.write_text(_ASKPASS)
            askpass.chmod(stat.S_IRWXU)
            env["GIT_ASKPASS"] = str(askpass)
        if creds.ssh_key_file is not None:
            command = ["ssh", "-i", str(creds.ssh_key_file), "-o", "IdentitiesOnly=yes"]
            command += ["-o", "BatchMode=yes"]
            if creds.known_hosts_file is not None:
                command += ["-o", f"UserKnownHostsFile={creds.known_hosts_file}"]
                command += ["-o", "StrictHostKeyChecking=yes"]
            env["GIT_SSH_COMMAND"] = " ".join(_shell_quote(part) for part in command)
        return env


_REFSPECS = ("+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*")

_ASKPASS = """#!/bin/sh
case "$1" in
  Username*) case "$MESHD_GIT_TOKEN" in *:*) printf '%s\\n' "${MESHD_GIT_TOKEN%%:*}" ;;
             *) printf 'x-access-token\\n' ;; esac ;;
  *) printf '%s\\n' "${MESHD_GIT_TOKEN#*:}" ;;
esac
"""


def _local_ref(followed: str) -> str:
    if followed.startswith("refs/heads/"):
        return "refs/remotes/origin/" + followed.removeprefix("refs/heads/")
    return followed


def _read_secret(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SourceError(f"{path}: cannot read the credentials file ({exc.strerror})") from None
    if not text:
        raise SourceError(f"{path}: the credentials file is empty; put the token in it")
    return text


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def _shell_quote(part: str) -> str:
    return "'" + part.replace("'", "'\\''") + "'"
