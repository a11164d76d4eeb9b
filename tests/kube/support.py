"""The reconcile loop on the Kubernetes target, following a test policy repository."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.loop import PassOutcome, Reconciler
from reconciler.source.git import GitRepositorySource
from reconciler.state import StateStore
from reconciler.targets.kubernetes import KubernetesApply, KubernetesTarget
from reconciler.targets.kubernetes_command import JOURNAL
from tests.kube.conftest import Kube

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


class KubeLoop:
    """One repository followed into one cluster, with its state in `state`."""

    def __init__(self, repo: Path, state: Path, kube: Kube, **target: Any) -> None:
        self.kube = kube
        self.store = StateStore(state)
        self.target = KubernetesTarget(
            kube.cluster,
            inventory=self.store.load().inventory,
            journal=state / JOURNAL,
            **target,
        )
        source = GitRepositorySource(str(repo), mirror_dir=state / "mirror.git", path="policies")
        self.loop = Reconciler(
            source, self.target, store=self.store, clock=lambda: NOW, confirm_timeout=0.1
        )

    def run(self) -> PassOutcome:
        return asyncio.run(self.loop.reconcile())

    @property
    def last(self) -> KubernetesApply:
        assert self.target._last is not None
        return self.target._last

    def desired(self) -> dict[str, dict[str, Any]]:
        """What the last applied revision renders to (the target's own lowering)."""
        assert self.loop.last_good is not None
        return dict(self.target.render(self.loop.last_good).objects)

    def counters(self) -> dict[str, int]:
        return dict(self.store.load().counters)


def holds(live: dict[str, Any], desired: dict[str, Any]) -> bool:
    """The live object carries every field meshc declares (a real API server adds defaults)."""
    meta, want = live["metadata"], desired["metadata"]
    return all(live.get(key) == value for key, value in desired.items() if key != "metadata") and (
        all(meta.get("labels", {}).get(k) == v for k, v in want.get("labels", {}).items())
    )
