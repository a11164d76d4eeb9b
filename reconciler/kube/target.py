"""The Kubernetes target as `meshd run` drives it: the live preflight before every push,
and — with `--leader-elect` — writes only while this replica holds the Lease.

Wraps `reconciler.targets.kubernetes.KubernetesTarget` (the apply itself) without
changing it: `render` keeps the compilation beside the objects (the preflight locates
its findings at the intent lines), `push` runs the preflight and refuses the revision
on a blocking finding (`PreflightRefused`: the loop keeps the last good revision), then
applies. A follower's push writes nothing and reports so; a replica that just became
leader first adopts the cluster's meshc-labelled objects into its inventory (the former
leader created them), so the next prune is complete.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from compiler.api import Compilation
from compiler.diagnostics import Severity
from reconciler.kube.client import ApiRefusal
from reconciler.kube.election import LeaderElector
from reconciler.kube.kinds import EMITTED_KINDS
from reconciler.kube.preflight import PreflightRefused, run_preflight
from reconciler.loop import Acceptance, Pushed
from reconciler.targets.kubernetes import (
    MANAGED_BY,
    PART_OF,
    KubernetesDesired,
    KubernetesTarget,
    part_name,
)

log = logging.getLogger("meshd.kubernetes")


@dataclass(frozen=True, slots=True)
class Checked:
    desired: KubernetesDesired
    compilation: Compilation


class CheckedTarget:
    def __init__(
        self,
        inner: KubernetesTarget,
        *,
        fail_on: Severity = Severity.ERROR,
        elector: LeaderElector | None = None,
        preflight: bool = True,
    ) -> None:
        self.inner = inner
        self.preflight = preflight
        self.fail_on = fail_on
        self.elector = elector
        self._adopted_term = 0
        self._followed = 0
        self._following = False
        self.refused = 0
        """Revisions the preflight refused."""

    def __repr__(self) -> str:
        return f"CheckedTarget({self.inner!r})"

    @property
    def name(self) -> str:
        return self.inner.name

    def render(self, compilation: Compilation) -> Checked:
        return Checked(self.inner.render(compilation), compilation)

    async def push(self, checked: Checked, *, revision: str) -> Pushed:
        elector = self.elector
        self._following = elector is not None and not elector.is_leader
        if self._following:
            self._followed += 1
            log.info("%s: not the leader; compiled, nothing written", revision[:12])
            return Pushed(generation=self._followed, changed=0, inventory=None)
        if elector is not None and self._adopted_term != elector.transitions:
            await asyncio.to_thread(self.adopt, checked.compilation.model.name)
            self._adopted_term = elector.transitions
        if self.preflight:
            await asyncio.to_thread(self.check, checked, revision)
        if elector is not None:
            elector.ensure_leader()
        return await self.inner.push(checked.desired, revision=revision)

    def check(self, checked: Checked, revision: str) -> None:
        """The preflight; raises `PreflightRefused` on a finding at or above --fail-on."""
        found = run_preflight(
            self.inner.cluster, checked.compilation, checked.desired.objects.values()
        )
        for note in found.notes:
            log.info("%s", note)
        refusing = found.lines(self.fail_on)
        if refusing:
            self.refused += 1
            raise PreflightRefused(revision, refusing)
        for line in found.lines(Severity.INFO):
            log.info("preflight: %s", line)

    def metrics_text(self) -> str:
        """Prometheus text: preflight refusals, and with leader election who leads."""
        lines = [
            "# HELP meshd_preflight_refused_total Revisions the live preflight refused.",
            "# TYPE meshd_preflight_refused_total counter",
            f"meshd_preflight_refused_total {self.refused}",
        ]
        if self.elector is not None:
            lease = f"{self.elector.config.namespace}/{self.elector.config.name}"
            lines += [
                "# HELP meshd_leader Whether this replica holds the Lease (only it writes).",
                "# TYPE meshd_leader gauge",
                f'meshd_leader{{lease="{lease}"}} {int(self.elector.is_leader)}',
                "# HELP meshd_leader_transitions_total Times this replica became leader.",
                "# TYPE meshd_leader_transitions_total counter",
                f'meshd_leader_transitions_total{{lease="{lease}"}} {self.elector.transitions}',
            ]
        return "\n".join(lines) + "\n"

    async def confirm(self, pushed: Pushed, *, timeout: float) -> Acceptance:
        if self._following:
            return Acceptance()
        return await self.inner.confirm(pushed, timeout=timeout)

    def adopt(self, mesh: str) -> None:
        """Add the cluster's objects labelled as this mesh's to the inventory (digest
        unknown), so a prune after a change of leader misses nothing."""
        selector = f"{MANAGED_BY}=meshc,{PART_OF}={mesh}"
        for api_version, kind in EMITTED_KINDS:
            try:
                listed = self.inner.cluster.list(api_version, kind, "", selector)
            except ApiRefusal as refusal:
                log.info("adopting %s: %s", kind, refusal)
                continue
            for item in listed:
                part = part_name({**item, "apiVersion": api_version, "kind": kind})
                self.inner.inventory.setdefault(part, "")
