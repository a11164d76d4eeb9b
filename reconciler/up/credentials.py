"""The CA of a local mesh, and the identity its control plane presents.

Without a key store `meshd up` creates a CA for this run only, in its private working
directory (removed on exit); with `--ca-state DIR` it issues from that store. Each Envoy's
credential for its xDS connection is written by the xds target's own helper
(`reconciler.xds.bootstrap.write_client_files`).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from reconciler.ca.issue import KeyAlgorithm
from reconciler.ca.service import CAService
from reconciler.ca.state import Settings
from reconciler.ca.store import create_store

CONTROL_PLANE_ACCOUNT = "meshd-control-plane"
"""Service account in the SPIFFE ID of the control plane's server certificate."""


def control_plane_id(trust_domain: str) -> str:
    return f"spiffe://{trust_domain}/ns/meshd/sa/{CONTROL_PLANE_ACCOUNT}"


def temporary_ca(directory: Path, trust_domain: str, now: datetime) -> CAService:
    """A root and intermediate for this run only, in `directory` (inside the run's private
    working directory, removed on exit and swept by the next run after a crash)."""
    create_store(
        directory,
        trust_domain=trust_domain,
        algorithm=KeyAlgorithm.ECDSA_P256,
        settings=Settings(),
        root_name="root-1",
        passphrase=None,
        now=now,
    )
    return CAService(directory)
