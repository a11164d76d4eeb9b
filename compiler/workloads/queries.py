"""The workload checks as engine queries over the manifests, which are inputs like the intents.

Inputs (set by `set_workload_inputs`, from `compiler.api`): `("workloads", "files")` →
the manifest names in order, `("manifest", name)` → its bytes, `("workloads",
"namespace")` → the namespace of objects that name none. Each manifest is read by a
query of its own (re-read only when its bytes change), the inventory merges them, and
each workload rule is one query reading the inventory and the model, so an edit re-runs
only the rules whose recorded reads changed.
"""

from __future__ import annotations

from compiler.diagnostics import Diagnostic, Span
from compiler.engine import Engine
from compiler.model.queries import MeshReader
from compiler.workloads.common import judged_services
from compiler.workloads.gateway_checks import elsewhere, used_gateways
from compiler.workloads.manifests import ManifestFile, read_manifest
from compiler.workloads.objects import Inventory
from compiler.workloads.registry import WORKLOAD_CHECKS, load_workload_checks
from compiler.workloads.sources import WorkloadSources


def set_workload_inputs(engine: Engine, sources: WorkloadSources) -> None:
    """Make `sources` the engine's manifests (none: the workload checks do not run)."""
    names = tuple(sources.files)
    known: tuple[str, ...] = engine.input_or("workloads", "files", ())
    for gone in set(known).difference(names):
        engine.remove_input("manifest", gone)
    for name, raw in sources.files.items():
        engine.set_input("manifest", name, raw)
    engine.set_input("workloads", "files", names)
    engine.set_input("workloads", "namespace", sources.default_namespace)


def manifest_file(db: Engine, name: str) -> ManifestFile:
    namespace: str = db.input("workloads", "namespace")
    return read_manifest(name, db.input("manifest", name), default_namespace=namespace)


def _manifests(db: Engine) -> list[ManifestFile]:
    return [db.query(manifest_file, name) for name in db.input("workloads", "files")]


def inventory(db: Engine) -> Inventory:
    """Every object of every manifest, in file order."""
    files = [found.inventory for found in _manifests(db)]
    return Inventory(
        tuple(w for f in files for w in f.workloads),
        tuple(s for f in files for s in f.services),
        tuple(a for f in files for a in f.accounts),
        tuple(g for f in files for g in f.gateways),
    )


def workload_rule_findings(db: Engine, code: str) -> tuple[Diagnostic, ...]:
    """One workload rule's findings (severities come in `finalize`, as for every rule)."""
    check = WORKLOAD_CHECKS[code]
    found: list[Diagnostic] = []
    try:
        for finding in check(MeshReader(db), db.query(inventory)):
            found.append(
                Diagnostic(
                    code, finding.span, finding.message, finding.hint, related=finding.related
                )
            )
    except Exception as exc:  # a bug in one rule must not hide the others' findings
        found = [
            Diagnostic(
                "MC000",
                Span("<meshc>"),
                f"internal error in rule {code}: {type(exc).__name__}: {exc}",
                "please report this to the meshc maintainers",
            )
        ]
    return tuple(found)


def workload_findings(db: Engine) -> tuple[Diagnostic, ...]:
    """The manifests' own problems and every workload rule's findings; nothing when no
    manifest was given."""
    if not db.input("workloads", "files"):
        return ()
    load_workload_checks()
    found: list[Diagnostic] = []
    for manifest in _manifests(db):
        found.extend(manifest.problems)
    for code in sorted(WORKLOAD_CHECKS):
        found.extend(db.query(workload_rule_findings, code))
    return tuple(found)


def workload_notes(db: Engine) -> tuple[str, ...]:
    """What the checks skipped: documents that are not workloads, and namespaces with
    services that the manifests do not describe (not judged)."""
    if not db.input("workloads", "files"):
        return ()
    notes = [note for manifest in _manifests(db) if (note := manifest.note()) is not None]
    model = MeshReader(db)
    found = db.query(inventory)
    judged = {view.key.namespace for view in judged_services(model, found)}
    for namespace in model.namespaces:
        if namespace not in judged:
            notes.append(
                f"workloads: the manifests describe nothing in namespace {namespace}; its "
                "services were not checked against them"
            )
    for used in used_gateways(model):
        gateway = used.gateway
        if gateway.namespace not in found.namespaces and not elsewhere(found, gateway):
            notes.append(
                f"workloads: the manifests describe nothing in namespace {gateway.namespace}; "
                f"the ingress gateway {gateway.name} there was not checked against them"
            )
    return tuple(notes)
