"""The Git source on real repositories: refs followed, policy roots read, signatures
checked, credentials kept out of every message."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from reconciler.source.git import Credentials, GitRepositorySource, SourceError, redact
from reconciler.source.signatures import SignaturePolicy
from reconciler.source.webhook import sign, signature_matches
from tests.plan.gitrepo import git, init_repo

MESH = "apiVersion: meshc/v1\nkind: Mesh\nmetadata: {name: m}\n"


def _commit(repo: Path, files: dict[str, str], message: str, *extra: str) -> str:
    for name, text in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(repo, "add", "-A")
    git(repo, *extra, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    repo = init_repo(tmp_path / "remote")
    _commit(repo, {"policies/mesh.yaml": MESH}, "mesh")
    return repo


def _source(tmp_path: Path, remote: Path, **kwargs: object) -> GitRepositorySource:
    return GitRepositorySource(str(remote), mirror_dir=tmp_path / "state" / "mirror.git", **kwargs)  # type: ignore[arg-type]


def test_follows_the_remote_head_and_sees_new_commits(tmp_path: Path, remote: Path) -> None:
    source = _source(tmp_path, remote, path="policies")
    first = source.fetch()
    assert first.ref == "refs/heads/main"
    assert first.commit == git(remote, "rev-parse", "HEAD")
    assert first.tree.files == {"mesh.yaml": MESH.encode()}
    second_commit = _commit(remote, {"policies/b.yaml": "# b\n"}, "b")
    second = source.fetch()
    assert second.commit == second_commit
    assert set(second.tree.files) == {"mesh.yaml", "b.yaml"}


def test_follows_the_remotes_new_default_branch(tmp_path: Path, remote: Path) -> None:
    source = _source(tmp_path, remote)
    source.fetch()
    git(remote, "checkout", "-q", "-b", "trunk")
    trunk = _commit(remote, {"policies/t.yaml": "# t\n"}, "t")
    fetched = source.fetch()
    assert (fetched.ref, fetched.commit) == ("refs/heads/trunk", trunk)


def test_branch_and_tag_refs(tmp_path: Path, remote: Path) -> None:
    tagged = git(remote, "rev-parse", "HEAD")
    git(remote, "tag", "v1")
    git(remote, "branch", "release")
    _commit(remote, {"policies/later.yaml": "# later\n"}, "later")
    by_tag = _source(tmp_path, remote, ref="v1").fetch()
    assert (by_tag.ref, by_tag.commit) == ("refs/tags/v1", tagged)
    by_branch = _source(tmp_path, remote, ref="release").fetch()
    assert (by_branch.ref, by_branch.commit) == ("refs/heads/release", tagged)


def test_a_moved_tag_is_followed(tmp_path: Path, remote: Path) -> None:
    git(remote, "tag", "stable")
    source = _source(tmp_path, remote, ref="stable")
    source.fetch()
    moved = _commit(remote, {"policies/x.yaml": "# x\n"}, "x")
    git(remote, "tag", "-f", "stable")
    assert source.fetch().commit == moved


def test_unknown_ref_and_missing_root_are_clear_errors(tmp_path: Path, remote: Path) -> None:
    with pytest.raises(SourceError, match="no branch or tag named 'nope'"):
        _source(tmp_path, remote, ref="nope").fetch()
    with pytest.raises(SourceError, match="has no directory"):
        _source(tmp_path, remote, path="elsewhere").fetch()


def test_unreachable_remote_never_shows_the_credentials(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("robot:hunter2-secret\n")
    url = "https://robot:hunter2-secret@127.0.0.1:9/shop.git"
    source = GitRepositorySource(
        url, mirror_dir=tmp_path / "m.git", credentials=Credentials(token_file=token)
    )
    with pytest.raises(SourceError) as raised:
        source.fetch()
    assert "hunter2" not in str(raised.value)
    assert "https://127.0.0.1:9/shop.git" in str(raised.value)
    assert "hunter2" not in repr(source) + repr(source.credentials)


def test_redact_removes_user_info_only() -> None:
    assert redact("https://u:p@host/x.git") == "https://host/x.git"
    assert redact("/srv/git/x.git") == "/srv/git/x.git"
    assert redact("git@github.com:o/r.git") == "git@github.com:o/r.git"


def _ssh_key(directory: Path, name: str) -> Path:
    key = directory / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True
    )
    return key


def _ssh_signed(repo: Path, key: Path, files: dict[str, str]) -> str:
    return _commit(
        repo,
        files,
        "signed",
        "-c",
        "gpg.format=ssh",
        "-c",
        f"user.signingkey={key}.pub",
        "-c",
        "commit.gpgsign=true",
    )


def test_ssh_signature_policy(tmp_path: Path, remote: Path) -> None:
    trusted = _ssh_key(tmp_path, "trusted")
    stranger = _ssh_key(tmp_path, "stranger")
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f"ops@example.com {(trusted.with_suffix('.pub')).read_text()}")
    policy = SignaturePolicy(ssh_allowed_signers=allowed)
    source = _source(tmp_path, remote, signatures=policy)

    unsigned = source.fetch()
    assert unsigned.signature is not None and not unsigned.signature.accepted
    assert "not signed" in unsigned.signature.reason

    _ssh_signed(remote, trusted, {"policies/a.yaml": "# a\n"})
    good = source.fetch()
    assert good.signature is not None and good.signature.accepted
    assert good.signature.signer is not None and "ops@example.com" in good.signature.signer

    _ssh_signed(remote, stranger, {"policies/b.yaml": "# b\n"})
    bad = source.fetch()
    assert bad.signature is not None and not bad.signature.accepted
    assert "allowed-signers" in bad.signature.reason


def test_gpg_signature_policy(tmp_path: Path, remote: Path) -> None:
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}

    def gpg(*args: str) -> str:
        done = subprocess.run(
            ["gpg", "--batch", *args], env=env, capture_output=True, text=True, check=True
        )
        return done.stdout

    gpg("--passphrase", "", "--quick-gen-key", "Ops <ops@example.com>", "ed25519", "sign", "never")
    fingerprint = next(
        line.split(":")[9]
        for line in gpg("--with-colons", "--list-keys").splitlines()
        if line.startswith("fpr:")
    )
    keys = tmp_path / "trusted.asc"
    keys.write_text(gpg("--armor", "--export", fingerprint))
    os.environ["GNUPGHOME"] = str(home)
    try:
        _commit(
            remote,
            {"policies/g.yaml": "# g\n"},
            "gpg",
            "-c",
            f"user.signingkey={fingerprint}",
            "-c",
            "commit.gpgsign=true",
        )
    finally:
        del os.environ["GNUPGHOME"]
    source = _source(tmp_path, remote, signatures=SignaturePolicy(gpg_public_keys=keys))
    verdict = source.fetch().signature
    assert verdict is not None and verdict.accepted and verdict.signer == fingerprint

    ssh_only = _source(tmp_path, remote, signatures=SignaturePolicy(ssh_allowed_signers=keys))
    refused = ssh_only.fetch().signature
    assert refused is not None and not refused.accepted and "GPG" in refused.reason


def test_webhook_signature() -> None:
    body = b'{"ref": "refs/heads/main"}'
    header = sign(b"s3cret", body)
    assert header.startswith("sha256=") and signature_matches(b"s3cret", body, header)
    assert not signature_matches(b"s3cret", body + b" ", header)
    assert not signature_matches(b"other", body, header)
    assert not signature_matches(b"s3cret", body, None)
    assert not signature_matches(b"", body, sign(b"", body))
