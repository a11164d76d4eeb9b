"""Shared helpers for the CA tests: in-process stores, the real `meshd` CLI, chain checks."""

from __future__ import annotations

import hashlib
import itertools
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509

from reconciler.ca.consumers import register_consumer, write_file_ack
from reconciler.ca.issue import KeyAlgorithm
from reconciler.ca.leaves import IssuedLeaf, issue_leaf
from reconciler.ca.state import ConsumerKind, Settings
from reconciler.ca.store import KeyStore, create_store, open_store
from tests.helpers import NOW, run_cli

TD = "cluster.local"
SPIFFE_A = f"spiffe://{TD}/ns/shop/sa/web"
SPIFFE_B = f"spiffe://{TD}/ns/shop/sa/cart"
NOW_ARG = ("--now", NOW.isoformat())

MESH_YAML = """\
# The mesh settings (this comment must survive edits)
apiVersion: meshc/v1
kind: Mesh
metadata: {name: shop}
spec:
  trustDomain: cluster.local   # our SPIFFE trust domain
  defaultAction: deny
"""


def new_store(
    path: Path,
    *,
    now: datetime = NOW,
    settings: Settings | None = None,
    algorithm: KeyAlgorithm = KeyAlgorithm.ECDSA_P256,
    consumers: tuple[str, ...] = ("proxy",),
) -> KeyStore:
    """A store with `consumers` registered (a rotation needs at least one)."""
    store = create_store(
        path,
        trust_domain=TD,
        algorithm=algorithm,
        settings=settings or Settings(),
        root_name="root-1",
        passphrase=None,
        now=now,
    )
    for name in consumers:
        register_consumer(store.state, name, ConsumerKind.XDS, now)
    store.save()
    return store


def git_trusting(store: KeyStore) -> frozenset[str]:
    """The fingerprints a Mesh document in step with the store's bundle trusts."""
    return frozenset(store.state.root(name).fingerprint for name in store.state.trusted)


def reopen(store: KeyStore) -> KeyStore:
    return open_store(store.path, passphrase=store.passphrase)


def issue(
    store: KeyStore,
    spiffe_id: str = SPIFFE_A,
    *,
    now: datetime = NOW,
    lifetime: timedelta | None = None,
) -> IssuedLeaf:
    return issue_leaf(store, spiffe_id=spiffe_id, now=now, lifetime=lifetime)


def ack_all(store: KeyStore, *names: str) -> None:
    prints = [store.state.root(n).fingerprint for n in store.state.trusted]
    for name in names:
        write_file_ack(store.acks_dir, name, prints)


def verify_svid(
    leaf: x509.Certificate,
    *,
    intermediates: list[x509.Certificate],
    roots: list[x509.Certificate],
    now: datetime,
) -> str:
    """The tests' relying party: verify an SVID chain as a mesh peer does (cryptography's
    client verifier) and return the SPIFFE ID it names. meshd itself never verifies its own
    leaves, so this oracle lives with the tests.

    Raises `x509.verification.VerificationError` when the chain does not verify."""
    from cryptography.x509.verification import PolicyBuilder, Store

    policy = PolicyBuilder().store(Store(roots)).time(now).build_client_verifier()
    subjects = policy.verify(leaf, intermediates).subjects or []
    spiffe = [str(n.value) for n in subjects if isinstance(n, x509.UniformResourceIdentifier)]
    return spiffe[0] if spiffe else ""


def verifies(leaf: IssuedLeaf, roots: list[x509.Certificate], now: datetime = NOW) -> bool:
    """Whether a peer trusting `roots` accepts the leaf (its chain minus the root)."""
    from cryptography.x509.verification import VerificationError

    try:
        verify_svid(leaf.certificate, intermediates=list(leaf.chain[:-1]), roots=roots, now=now)
    except VerificationError:
        return False
    return True


def issue_command(state: Path, *extra: str) -> tuple[str, ...]:
    """`meshd` arguments issuing an SVID for service account a/b from the store at `state`
    (its key goes to a fresh file next to the store)."""
    key_out = state.parent / f"leaf-{next(_KEY_NUMBERS)}.key"
    return (
        "ca",
        "issue",
        "--state",
        str(state),
        "--namespace",
        "a",
        "--service-account",
        "b",
        "--key-out",
        str(key_out),
        *extra,
    )


_KEY_NUMBERS = itertools.count(1)


def meshd(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real `meshd` executable, as a subprocess (slow: use for end-to-end checks)."""
    return run_cli("meshd", *args, env=env)


def meshd_inproc(
    *args: str, env: dict[str, str] | None = None, clock: datetime = NOW
) -> subprocess.CompletedProcess[str]:
    """`meshd` in this process through click's runner (same error handling, no start-up),
    its clock reading `clock`: how tests move time for commands that write the store."""
    from click.testing import CliRunner

    from reconciler.ca.cli import Clock
    from reconciler.cli import main

    result = CliRunner(env=env).invoke(
        main, list(args), catch_exceptions=False, obj=Clock(lambda: clock)
    )
    return subprocess.CompletedProcess(
        ["meshd", *args], result.exit_code, result.stdout, result.stderr
    )


def assert_clean_failure(
    result: subprocess.CompletedProcess[str], code: int, *needles: str
) -> None:
    """Failed with `code`, a one-line `meshd:` message containing every needle, no traceback."""
    output = result.stdout + result.stderr
    assert result.returncode == code, output
    assert "Traceback" not in output, output
    assert result.stderr.startswith("meshd: "), output
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)


def tree_digest(path: Path) -> str:
    """A hash of every file name, mode and content under `path`: equal digests mean a
    command left the store byte-identical."""
    digest = hashlib.sha256()
    for item in sorted(path.rglob("*")):
        digest.update(str(item.relative_to(path)).encode() + b"\0")
        digest.update(oct(item.stat().st_mode).encode())
        if item.is_file():
            digest.update(item.read_bytes())
    return digest.hexdigest()
