"""The cluster's own CRDs, checked with the checker `meshc lint --crds` uses.

One checker (`compiler.verify.crds`), fed the CustomResourceDefinitions the API server
serves instead of files: a cluster whose Istio lacks `v1`, or a field meshc emits, is
caught before anything is applied (MC190, located at the intent line like `--crds`). A
kind meshc emits for which the cluster serves no CRD at all is MC800: every apply of it
would fail.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from compiler.api import Compilation
from compiler.artifacts import ArtifactKey
from compiler.diagnostics import Diagnostic, Span
from compiler.verify.crds import CrdLoadError, CrdReport, CrdSet, check_object
from compiler.verify.findings import crd_diagnostics
from reconciler.kube.client import Cluster
from reconciler.kube.located import intent_span

CRD_API = "apiextensions.k8s.io/v1"
BUILT_IN_GROUPS = frozenset({"", "networking.k8s.io", "apps", "coordination.k8s.io"})
"""Groups the API server serves itself: no CRD to read."""
CRD_MISSING = "MC800"


def live_crds(cluster: Cluster, groups: Iterable[str]) -> tuple[CrdSet, list[Diagnostic]]:
    """The served CRDs of `groups`; a CRD the checker cannot read is a finding."""
    wanted = set(groups)
    crds = CrdSet()
    unreadable = []
    for crd in cluster.list(CRD_API, "CustomResourceDefinition", "", ""):
        if (crd.get("spec") or {}).get("group") not in wanted:
            continue
        origin = f"cluster:CustomResourceDefinition/{crd['metadata']['name']}"
        try:
            crds.add(crd, origin=origin)
        except CrdLoadError as exc:
            unreadable.append(
                Diagnostic(CRD_MISSING, Span(origin), str(exc), "reinstall Istio's CRDs")
            )
    return crds, unreadable


def crd_findings(
    cluster: Cluster, compilation: Compilation, objects: Iterable[dict[str, Any]]
) -> list[Diagnostic]:
    emitted = [(ArtifactKey.of_kubernetes(obj), obj) for obj in objects]
    custom = [(key, obj) for key, obj in emitted if key.group not in BUILT_IN_GROUPS]
    crds, found = live_crds(cluster, {key.group for key, _ in custom})
    report = CrdReport()
    missing: dict[str, dict[str, Any]] = {}
    for key, obj in custom:
        if (key.group, key.kind) not in crds.kinds:
            missing.setdefault(f"{key.kind} ({obj['apiVersion']})", obj)
            continue
        check_object(key, obj, crds, report)
    found.extend(crd_diagnostics(report, compilation))
    for kind, obj in sorted(missing.items()):
        found.append(
            Diagnostic(
                CRD_MISSING,
                intent_span(compilation, obj),
                f"the cluster serves no CustomResourceDefinition for {kind}, which this "
                "revision emits: every apply of it would fail",
                "install Istio's CRDs (and the Gateway API's for HTTPRoute) in the cluster",
            )
        )
    return found
