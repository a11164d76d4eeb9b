"""Commit-signature policy: apply only revisions whose commit a trusted key signed.

Git verifies; we decide. An SSH signature is checked by `git verify-commit` against an
allowed-signers file (OpenSSH's format: principal, key); a GPG signature against a
keyring built, for the one check, from the armored public keys the operator trusts. A
commit that is unsigned, signed by another key, or signed in a form no configured policy
covers is refused with the reason, never applied.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

VERIFY_TIMEOUT_SECONDS = 30
_SSH_GOOD = re.compile(r'Good "git" signature for (\S+) with (\S+) key (\S+)')
_GPG_VALID = re.compile(r"^\[GNUPG:\] VALIDSIG (\S+)", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class SignatureVerdict:
    accepted: bool
    signer: str | None
    """Who signed (SSH principal and key fingerprint, or GPG fingerprint) when known."""
    reason: str
    """Why it was accepted or refused, for status and logs."""


@dataclass(frozen=True, slots=True)
class SignaturePolicy:
    """Trusted signers: an SSH allowed-signers file and/or a file of GPG public keys."""

    ssh_allowed_signers: Path | None = None
    gpg_public_keys: Path | None = None

    def verify(self, git_dir: Path, commit: str) -> SignatureVerdict:
        kind = _signature_kind(git_dir, commit)
        if kind is None:
            return SignatureVerdict(False, None, f"commit {commit[:12]} is not signed")
        if kind == "ssh":
            if self.ssh_allowed_signers is None:
                return _refused(commit, "is SSH-signed but no SSH allowed-signers file is set")
            return _verify_ssh(git_dir, commit, self.ssh_allowed_signers)
        if self.gpg_public_keys is None:
            return _refused(commit, "is GPG-signed but no GPG public keys are trusted")
        return _verify_gpg(git_dir, commit, self.gpg_public_keys)


def _refused(commit: str, why: str) -> SignatureVerdict:
    return SignatureVerdict(False, None, f"commit {commit[:12]} {why}")


def _signature_kind(git_dir: Path, commit: str) -> str | None:
    raw = _git(git_dir, ["cat-file", "commit", commit]).stdout
    header = raw.split("\n\n", 1)[0]
    if "gpgsig" not in header:
        return None
    if "-----BEGIN SSH SIGNATURE-----" in header:
        return "ssh"
    return "gpg"


def _verify_ssh(git_dir: Path, commit: str, allowed: Path) -> SignatureVerdict:
    if not allowed.is_file():
        return _refused(commit, f"cannot be checked: {allowed} is not a readable file")
    result = _git(
        git_dir,
        ["-c", f"gpg.ssh.allowedSignersFile={allowed}", "verify-commit", commit],
    )
    found = _SSH_GOOD.search(result.stderr)
    if result.returncode == 0 and found is not None:
        signer = f"{found.group(1)} ({found.group(2)} {found.group(3)})"
        return SignatureVerdict(True, signer, f"signed by {signer}")
    return _refused(commit, "is not signed by a key in the allowed-signers file")


def _verify_gpg(git_dir: Path, commit: str, keys: Path) -> SignatureVerdict:
    if not keys.is_file():
        return _refused(commit, f"cannot be checked: {keys} is not a readable file")
    with tempfile.TemporaryDirectory(prefix="meshd-gpg-") as home:
        os.chmod(home, 0o700)
        env = {"GNUPGHOME": home}
        imported = subprocess.run(
            ["gpg", "--batch", "--quiet", "--import", str(keys)],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=VERIFY_TIMEOUT_SECONDS,
            check=False,
        )
        if imported.returncode != 0:
            return _refused(commit, f"cannot be checked: {keys} holds no importable public key")
        result = _git(git_dir, ["verify-commit", "--raw", commit], env)
    found = _GPG_VALID.search(result.stderr)
    if result.returncode == 0 and found is not None:
        return SignatureVerdict(True, found.group(1), f"signed by GPG key {found.group(1)}")
    return _refused(commit, "is not signed by a trusted GPG key")


def _git(
    git_dir: Path, args: list[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "--git-dir", str(git_dir), *args],
        env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1", **(env or {})},
        capture_output=True,
        text=True,
        timeout=VERIFY_TIMEOUT_SECONDS,
        check=False,
    )
