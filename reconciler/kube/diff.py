"""`meshd diff`: a revision's plan against the live cluster — the counterpart of `meshc plan`.

Every object of the revision is applied as a server-side dry run under the field manager
`meshc` (nothing is written): the server's answer compared with the live object says
created, changed (field by field) or unchanged; the objects the cluster labels as this
mesh's that the revision no longer has are the ones a pass would prune. The live
preflight's findings follow. Exit codes as `terraform plan --detailed-exitcode`: 0 no
change, 1 changes, 2 errors (the revision does not compile, a preflight error, an object
the API server refuses).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.api import Compilation, compile_tree, load_tree
from compiler.diagnostics import Severity
from compiler.plan.mask import mask_value
from reconciler.kube.client import ApiRefusal, Cluster, load_configuration
from reconciler.kube.kinds import EMITTED_KINDS
from reconciler.kube.order import staged
from reconciler.kube.ownership import ours
from reconciler.kube.preflight import Preflight, run_preflight
from reconciler.loop import finding_line, utc_now
from reconciler.targets.kubernetes import (
    CACERTS,
    PART_OF,
    KubernetesDesired,
    KubernetesTarget,
    comparable,
    part_name,
)

ABSENT = "(absent)"


@dataclass(slots=True)
class LivePlan:
    created: list[str] = field(default_factory=list)
    changed: dict[str, list[str]] = field(default_factory=dict)
    """part → its field changes, `path: before → after`."""
    unchanged: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)

    @property
    def changes(self) -> int:
        return len(self.created) + len(self.changed) + len(self.pruned)


def field_changes(before: Any, after: Any, path: str = "") -> Iterator[str]:
    """`path: before → after` for every leaf that differs (values masked like a plan's)."""
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after), key=str):
            yield from field_changes(
                before.get(key, ABSENT), after.get(key, ABSENT), f"{path}.{key}" if path else key
            )
    elif isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        for index, (old, new) in enumerate(zip(before, after, strict=True)):
            yield from field_changes(old, new, f"{path}[{index}]")
    elif before != after:
        yield f"{path}: {_shown(before)} → {_shown(after)}"


def _shown(value: Any) -> str:
    if value == ABSENT:
        return ABSENT
    return json.dumps(mask_value(value), sort_keys=True, separators=(", ", ": "))


def plan_against(cluster: Cluster, desired: KubernetesDesired, mesh: str) -> LivePlan:
    plan = LivePlan()
    for part, obj in staged(desired.objects.items()):
        try:
            live = cluster.get(obj)
            dry = cluster.apply(obj, dry_run=True, force=_takes_back(live))
        except ApiRefusal as refusal:
            plan.refused[part] = str(refusal)
            continue
        if live is None:
            plan.created.append(part)
        elif comparable(dry) == comparable(live):
            plan.unchanged.append(part)
        else:
            plan.changed[part] = list(field_changes(comparable(live), comparable(dry)))
    selector = f"app.kubernetes.io/managed-by=meshc,{PART_OF}={mesh}"
    for api_version, kind in EMITTED_KINDS:
        try:
            listed = cluster.list(api_version, kind, "", selector)
        except ApiRefusal:
            continue  # a kind the cluster does not serve holds nothing to prune
        for item in listed:
            part = part_name({**item, "apiVersion": api_version, "kind": kind})
            if part not in desired.objects and item["metadata"]["name"] != CACERTS:
                plan.pruned.append(part)
    plan.pruned.sort()
    return plan


def _takes_back(live: dict[str, Any] | None) -> bool:
    """As a pass does: an object of meshc's whose other managers are hand edits only."""
    if live is None or not ours(live):
        return False
    others = [e for e in live["metadata"].get("managedFields") or [] if e.get("manager") != "meshc"]
    return bool(others) and all(e.get("operation") == "Update" for e in others)


def read_compilation(repo: str, ref: str | None, path: str) -> tuple[str, Compilation]:
    """The revision: a Git repository (URL or clone), or a plain folder of intents."""
    folder = Path(repo)
    if folder.is_dir() and not (folder / ".git").exists() and not (folder / "HEAD").exists():
        tree = load_tree(folder / path if path else folder)
        return "the folder", compile_tree(tree, now=utc_now())
    from reconciler.source.git import GitRepositorySource

    with tempfile.TemporaryDirectory(prefix="meshd-diff-") as scratch:
        source = GitRepositorySource(
            repo, mirror_dir=Path(scratch) / "mirror.git", ref=ref, path=path
        )
        revision = source.read()
        return revision.id[:12], compile_tree(revision.tree, now=utc_now())


def report(plan: LivePlan, preflight: Preflight, fail_on: Severity) -> list[str]:
    lines = [f"  + create    {part}" for part in plan.created]
    for part, changes in plan.changed.items():
        lines.append(f"  ~ change    {part}")
        lines.extend(f"      {change}" for change in changes)
    lines.extend(f"  - prune     {part}" for part in plan.pruned)
    lines.extend(f"  ! refused   {part}: {why}" for part, why in plan.refused.items())
    findings = preflight.lines(Severity.INFO)
    if findings:
        lines.append("preflight:")
        lines.extend("  " + text.replace("\n", "\n  ") for text in findings)
    lines.extend(f"note: {note}" for note in preflight.notes)
    errors = len(preflight.blocking(fail_on))
    lines.append(
        f"{len(plan.created)} to create, {len(plan.changed)} to change, {len(plan.pruned)} "
        f"to prune, {len(plan.unchanged)} unchanged; {len(plan.refused)} refused, "
        f"{errors} preflight finding{'s' if errors != 1 else ''} at or above {fail_on.name.lower()}"
    )
    return lines


def run_diff(
    repo: str,
    policy_path: str,
    ref: str | None,
    kubeconfig: Path | None,
    context: str | None,
    threshold: Severity,
) -> tuple[list[str], int]:
    """The report's lines and the exit code."""
    revision, compilation = read_compilation(repo, ref, policy_path)
    blocking = compilation.blocking(threshold)
    if blocking:
        lines = [finding_line(diagnostic) for diagnostic in blocking]
        lines.append(f"{revision}: does not compile; nothing to diff (meshc lint lists it)")
        return lines, 2
    cluster = Cluster(load_configuration(kubeconfig, context))
    try:
        desired = KubernetesTarget(cluster).render(compilation)
        preflight = run_preflight(cluster, compilation, desired.objects.values())
        plan = plan_against(cluster, desired, compilation.model.name)
    finally:
        cluster.close()
    lines = [f"meshd diff: {revision} against {cluster.server}"]
    lines.extend(report(plan, preflight, threshold))
    if plan.refused or preflight.blocking(threshold):
        return lines, 2
    return lines, 1 if plan.changes else 0
