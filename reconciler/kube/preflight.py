"""The live preflight: what the cluster says about a revision before any of it is applied.

Three checks, each reported like a compile finding (`file:line:col`, at the intent line):

1. the cluster's own CRDs, with the checker `meshc lint --crds` uses (`live_crds`);
2. the workload checks of `--workloads` (MC70x), fed the cluster's live objects
   (`live_workloads`): selectors match running pods, each version's labels select pods,
   identities' ServiceAccounts exist and pods run as them, target ports are container
   ports, the named gateways exist;
3. ownership (`ownership`): an object meshc would write that exists without meshc's
   label, another VirtualService for the same host.

The findings get their severities, `meshc.yaml` configuration and inline suppressions
from the same engine as every rule; one at or above `--fail-on` refuses the revision:
nothing of it is applied, and the target keeps the last good one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from compiler.api import Compilation
from compiler.diagnostics import Diagnostic, Related, Severity
from compiler.lint.engine import finalize
from compiler.workloads.registry import WORKLOAD_CHECKS, load_workload_checks
from reconciler.errors import MeshdError
from reconciler.kube.client import ApiRefusal, Cluster
from reconciler.kube.live_crds import crd_findings
from reconciler.kube.live_workloads import at_object, live_inventory, mesh_namespaces
from reconciler.kube.ownership import ownership_findings
from reconciler.loop import finding_line


@dataclass(frozen=True, slots=True)
class Preflight:
    findings: tuple[Diagnostic, ...]
    """Finalized: severities from the registry and meshc.yaml, suppressions applied."""
    notes: tuple[str, ...] = ()

    def blocking(self, threshold: Severity = Severity.ERROR) -> list[Diagnostic]:
        return [d for d in self.findings if d.severity >= threshold and d.suppressed_reason is None]

    def lines(self, threshold: Severity = Severity.INFO) -> list[str]:
        """Each finding as `file:line:col: severity CODE message`, its related places
        after it, as the compile findings of a refused revision read."""
        out = []
        for diagnostic in self.blocking(threshold):
            text = finding_line(diagnostic)
            for related in diagnostic.related:
                text += f"\n    = note: {_place(related)}: {related.message}"
            if diagnostic.hint:
                text += f"\n    = help: {diagnostic.hint}"
            out.append(text)
        return out


class PreflightRefused(MeshdError):
    """The cluster refuses the revision; `findings` are its lines, as compile findings."""

    code = 1

    def __init__(self, revision: str, findings: list[str]) -> None:
        count = len(findings)
        header = (
            f"preflight: {count} finding{'s' if count != 1 else ''} against the cluster refuse "
            f"revision {revision[:12]}; nothing of it was applied:"
        )
        super().__init__("\n".join([header, *findings]))
        self.findings = (header, *findings)


class PreflightUnreadable(MeshdError):
    """The API server refused a read the preflight needs (RBAC, most often)."""

    code = 1


def run_preflight(
    cluster: Cluster, compilation: Compilation, objects: Iterable[dict[str, Any]]
) -> Preflight:
    """The preflight's findings; `PreflightUnreadable` when the cluster refuses a read."""
    try:
        return _run_preflight(cluster, compilation, list(objects))
    except ApiRefusal as refusal:
        raise PreflightUnreadable(
            f"preflight: {cluster.server} refused a read ({refusal}); grant meshd the read "
            "access of deploy/kubernetes/rbac-cluster.yaml, or pass --no-preflight"
        ) from None


def _run_preflight(
    cluster: Cluster, compilation: Compilation, desired: list[dict[str, Any]]
) -> Preflight:
    found = crd_findings(cluster, compilation, desired)
    namespaces = mesh_namespaces(compilation.model)
    live = live_inventory(cluster, namespaces)
    found.extend(live.problems)
    load_workload_checks()
    for code, check in sorted(WORKLOAD_CHECKS.items()):
        for finding in check(compilation.model, live.inventory):
            related = tuple(Related(at_object(r.span), r.message) for r in finding.related)
            found.append(
                Diagnostic(code, finding.span, finding.message, finding.hint, related=related)
            )
    found.extend(ownership_findings(cluster, compilation, desired))
    ours = {(d.code, d.span, d.message) for d in found}
    suppressions = {
        name: scanned
        for name, result in compilation.files.items()
        if (scanned := result.suppressions())
    }
    finalized = finalize(found, suppressions=suppressions, config=compilation.config.lint)
    notes = list(live.notes)
    judged = live.inventory.namespaces
    notes.extend(
        f"preflight: namespace {namespace} has no ServiceAccount in the cluster (it does not "
        "exist?); its workloads were not checked"
        for namespace in namespaces
        if namespace not in judged
    )
    return Preflight(
        tuple(d for d in finalized if (d.code, d.span, d.message) in ours), tuple(notes)
    )


def _place(related: Related) -> str:
    """A live object by its name alone (`cluster:Kind/namespace/name`), a file with line."""
    span = related.span
    return span.file if span.file.startswith("cluster:") else str(span)
