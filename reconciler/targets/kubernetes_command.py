"""`meshd run --target kubernetes`: the target built from the command's options."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.kube.client import Cluster, load_configuration
from reconciler.state import StateStore
from reconciler.targets.kubernetes import CacertsSource, KubernetesTarget

JOURNAL = "kubernetes-journal.json"
"""Beside the state: the parts a pass may have created before its state was saved."""


@contextlib.contextmanager
def kubernetes_target(options: Any, store: StateStore) -> Iterator[KubernetesTarget]:
    configuration = load_configuration(options["kubeconfig"], options["context"])
    cluster = Cluster(configuration)
    try:
        yield KubernetesTarget(
            cluster,
            inventory=store.load().inventory,
            prune=not options["no_prune"],
            force_conflicts=options["force_conflicts"],
            cacerts=cacerts_from(options["ca_state"]) if options["ca_state"] else None,
            journal=store.directory / JOURNAL,
        )
    finally:
        cluster.close()


def cacerts_from(ca_state: Path) -> CacertsSource:
    """The `cacerts` Secret read from the key store when a pass applies it (so a rotated
    intermediate is picked up), never kept between passes."""
    from reconciler.ca.service import CAService
    from reconciler.ca.store import read_passphrase

    service = CAService(ca_state, read_passphrase(None))

    def read(namespace: str) -> dict[str, Any]:
        return service.cacerts(datetime.now(UTC), namespace=namespace).to_object()

    return read
