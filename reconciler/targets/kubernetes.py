"""The Kubernetes target: server-side apply of a revision's objects, pruning by inventory.

A pass applies in stages (`reconciler.kube.order`): for each object, a server-side
dry run under the field manager `meshc` says what the server would store; only an
object whose dry run differs from the live one is applied, so a pass over an unchanged
revision writes nothing. Against the inventory (part → digest of what was last applied,
kept in the reconciler's state) a change the repository did not make is drift: corrected
and counted. Field ownership decides the rest:

- a field another *applier* owns (another GitOps tool, a controller) is a conflict —
  that object's rejection, naming the manager, unless `--force-conflicts`;
- a field a hand edit took over (a manager whose operation is Update: `kubectl edit`,
  `kubectl patch`) on an object meshc applied before is drift, taken back;
- an object meshc never applied that already exists under another manager is never
  taken over: a conflict, reported.

Pruning deletes only what the last inventory lists, the revision no longer has, and the
cluster still labels `app.kubernetes.io/managed-by: meshc` with a `part-of` mesh (listed
by label selector: a double check); never a Namespace, never `cacerts`. Before an apply
creates anything, the keys it may create are journalled beside the state, so a `kill -9`
between a create and the saved state leaves nothing the next pass cannot prune.

The `cacerts` Secret comes straight from the CA key store at push time: it is never
rendered, logged, put in the inventory or the state, or named in an Event.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from compiler.api import Compilation
from compiler.lower import LoweringRefused, lower
from reconciler.errors import MeshdError
from reconciler.faults import checkpoint
from reconciler.kube.client import ApiRefusal, Cluster, ClusterUnavailable
from reconciler.kube.order import WAVES, staged, wave
from reconciler.loop import Acceptance, Pushed

log = logging.getLogger("meshd.kubernetes")

MANAGED_BY = "app.kubernetes.io/managed-by"
PART_OF = "app.kubernetes.io/part-of"
OWNED_SELECTOR = f"{MANAGED_BY}=meshc,{PART_OF}"
CACERTS = "cacerts"
SERVER_FIELDS = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields")

CacertsSource = Callable[[str], dict[str, Any]]
"""Root namespace → the `cacerts` Secret object, read from the key store at push time."""


@dataclass(frozen=True, slots=True)
class KubernetesDesired:
    """A revision's objects (part → object) and the root namespace `cacerts` goes to."""

    objects: Mapping[str, dict[str, Any]]
    root_namespace: str


@dataclass(slots=True)
class KubernetesApply:
    """What one pass did, part by part."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    drift_corrected: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    released: list[str] = field(default_factory=list)
    """Inventory parts gone from the cluster or no longer labelled as meshc's: dropped
    from the inventory, never deleted."""
    unchanged: int = 0
    inventory: dict[str, str] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    """Parts in the order they were written (applied, then pruned)."""


def part_name(obj: Mapping[str, Any]) -> str:
    """`<apiVersion>/<kind>/<namespace>/<name>`: what the inventory and rejections name."""
    meta = obj["metadata"]
    return f"{obj['apiVersion']}/{obj['kind']}/{meta.get('namespace', '')}/{meta['name']}"


def split_part(part: str) -> tuple[str, str, str, str]:
    """(apiVersion, kind, namespace, name) of a part name."""
    api_version, kind, namespace, name = part.rsplit("/", 3)
    return api_version, kind, namespace, name


def digest(obj: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def comparable(obj: Mapping[str, Any]) -> dict[str, Any]:
    """An object without what the server keeps for itself (versions, ownership, status)."""
    meta = {k: v for k, v in obj.get("metadata", {}).items() if k not in SERVER_FIELDS}
    rest = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
    return {**rest, "metadata": meta}


class KubernetesTarget:
    """Applies revisions to one cluster; as the loop's target it keeps the inventory of
    the last pass (seeded from the reconciler's state)."""

    def __init__(
        self,
        cluster: Cluster,
        *,
        inventory: Mapping[str, str] | None = None,
        prune: bool = True,
        force_conflicts: bool = False,
        cacerts: CacertsSource | None = None,
        journal: Path | None = None,
    ) -> None:
        self.cluster = cluster
        self.inventory: dict[str, str] = dict(inventory or {})
        self.prune = prune
        self.force_conflicts = force_conflicts
        self.cacerts = cacerts
        self.journal = journal
        self._generation = 0
        self._writes = 0
        self._last: KubernetesApply | None = None
        for part in self._journalled():
            self.inventory.setdefault(part, "")

    def __repr__(self) -> str:
        return f"KubernetesTarget({self.cluster.server!r})"

    @property
    def name(self) -> str:
        return f"kubernetes {self.cluster.server}"

    def render(self, compilation: Compilation) -> KubernetesDesired:
        try:
            artifacts = lower(compilation)
        except LoweringRefused as exc:
            raise MeshdError(str(exc)) from None
        objects = {part_name(obj): obj for _, obj in artifacts}
        return KubernetesDesired(objects, compilation.model.settings.root_namespace)

    async def push(self, desired: KubernetesDesired, *, revision: str) -> Pushed:
        try:
            result = await asyncio.to_thread(self.apply, desired, revision=revision)
        except MeshdError:
            for part in desired.objects:  # maybe created before the failure: prunable later
                self.inventory.setdefault(part, "")
            raise
        self.inventory = dict(result.inventory)
        self._generation += 1
        self._last = result
        return Pushed(
            generation=self._generation,
            changed=len(result.created) + len(result.updated) + len(result.pruned),
            drift_corrected=len(result.drift_corrected),
            pruned=len(result.pruned),
            inventory=self.inventory,
        )

    async def confirm(self, pushed: Pushed, *, timeout: float) -> Acceptance:
        """The API server's answers are the confirmation: stored, or that object's
        rejection (the other objects are applied all the same)."""
        result = self._last
        if result is None:
            return Acceptance()
        return Acceptance(accepted=(self.name,), rejected=dict(result.rejected))

    # -- one pass ------------------------------------------------------------------------

    def apply(self, desired: KubernetesDesired, *, revision: str) -> KubernetesApply:
        """Make the cluster hold `desired`; raises `MeshdError` when the API server keeps
        failing (the objects applied so far stay; the next pass converges)."""
        result = KubernetesApply()
        previous = dict(self.inventory)
        self._journal(set(previous) | set(desired.objects))
        self._apply_cacerts(desired.root_namespace, result)
        self._apply_objects(desired, previous, revision, result)
        if self.prune:
            self._prune(previous, desired, revision, result)
        for part, known in previous.items():
            if part not in desired.objects and part not in (*result.pruned, *result.released):
                result.inventory.setdefault(part, known)
        self._journal(set(result.inventory))
        return result

    def _apply_objects(
        self,
        desired: KubernetesDesired,
        previous: Mapping[str, str],
        revision: str,
        result: KubernetesApply,
    ) -> None:
        """Apply wave by wave. A denial that does not exist yet is held back in a
        namespace where an allow was rejected (it would cut what the allow lets through)."""
        rejected_allows: set[str] = set()
        for part, obj in staged(desired.objects.items()):
            namespace = obj["metadata"].get("namespace", "")
            held = WAVES[wave(obj)] == "denials" and namespace in rejected_allows
            if held and not self._exists(obj):
                result.rejected[part] = (
                    "held back: an allow in this namespace was rejected, and applying "
                    "this denial now would cut traffic the allow should let through"
                )
                continue
            outcome = self._apply_one(part, obj, previous.get(part), revision, result)
            if outcome is None and WAVES[wave(obj)] == "allows":
                rejected_allows.add(namespace)

    def _apply_one(
        self,
        part: str,
        obj: dict[str, Any],
        known: str | None,
        revision: str,
        result: KubernetesApply,
    ) -> str | None:
        """Apply one object when its dry run differs from the live one; records what
        happened and returns it (None when rejected)."""
        want = digest(obj)
        try:
            live = self.cluster.get(obj)
            dry, force = self._dry_run(obj, live, ours=bool(known))
        except ApiRefusal as refusal:
            result.rejected[part] = self._rejection(obj, refusal)
            if known is not None:
                result.inventory[part] = known
            return None
        result.inventory[part] = want
        if live is not None and comparable(dry) == comparable(live):
            result.unchanged += 1
            return "unchanged"
        self._writes += 1
        checkpoint(f"kubernetes-apply-{self._writes}")
        try:
            stored = self.cluster.apply(obj, dry_run=False, force=force)
        except ApiRefusal as refusal:
            result.rejected[part] = self._rejection(obj, refusal)
            if known is not None:
                result.inventory[part] = known
            else:
                del result.inventory[part]
            return None
        result.order.append(part)
        if known == want:
            result.drift_corrected.append(part)
            self._event(
                stored, "DriftCorrected", f"meshc put back a change made by hand ({revision[:12]})"
            )
            return "drift"
        (result.created if live is None else result.updated).append(part)
        self._event(stored, "Applied", f"applied by meshc from revision {revision[:12]}")
        return "created" if live is None else "updated"

    def _exists(self, obj: dict[str, Any]) -> bool:
        try:
            return self.cluster.get(obj) is not None
        except ApiRefusal:
            return False

    def _dry_run(
        self, obj: dict[str, Any], live: dict[str, Any] | None, *, ours: bool
    ) -> tuple[dict[str, Any], bool]:
        """What the server would store, and whether the apply needs `force`: when asked
        to, or to take back fields hand edits took over from an object meshc applied
        before (every conflicting manager's operation is an Update, never an Apply)."""
        force = self.force_conflicts
        try:
            return self.cluster.apply(obj, dry_run=True, force=force), force
        except ApiRefusal as refusal:
            if not (refusal.conflicts and ours and _hand_edits_only(live, refusal)):
                raise
        return self.cluster.apply(obj, dry_run=True, force=True), True

    def _rejection(self, obj: dict[str, Any], refusal: ApiRefusal) -> str:
        if refusal.conflicts:
            owners = sorted({manager for manager, _ in refusal.conflicts})
            where = ", ".join(sorted({f for _, f in refusal.conflicts}))
            return (
                f"conflict: {where} owned by field manager "
                + ", ".join(f'"{m}"' for m in owners)
                + "; not overwritten (change it there, or pass --force-conflicts to take it)"
            )
        namespace = obj["metadata"].get("namespace")
        if refusal.status == 404 and namespace and f'"{namespace}"' in refusal.message:
            return (
                f"namespace {namespace} does not exist; meshc never creates namespaces: create it"
            )
        return f"refused by the API server: {refusal}"

    def _apply_cacerts(self, root_namespace: str, result: KubernetesApply) -> None:
        """`cacerts` from the key store: applied when it differs, never recorded."""
        if self.cacerts is None:
            return
        obj = self.cacerts(root_namespace)
        part = part_name(obj)
        try:
            live = self.cluster.get(obj)
            dry, force = self._dry_run(obj, live, ours=True)
            if live is not None and comparable(dry) == comparable(live):
                result.unchanged += 1
                return
            self.cluster.apply(obj, dry_run=False, force=force)
        except ApiRefusal as refusal:
            result.rejected[part] = self._rejection(obj, refusal)
            return
        (result.created if live is None else result.updated).append(part)

    def _prune(
        self,
        previous: Mapping[str, str],
        desired: KubernetesDesired,
        revision: str,
        result: KubernetesApply,
    ) -> None:
        gone = [part for part in previous if part not in desired.objects and _prunable(part)]
        owned: dict[tuple[str, str, str], set[str]] = {}
        for part in sorted(gone, key=_prune_order):
            api_version, kind, namespace, name = split_part(part)
            group = (api_version, kind, namespace)
            if group not in owned:
                try:
                    listed = self.cluster.list(api_version, kind, namespace, OWNED_SELECTOR)
                except ApiRefusal as refusal:
                    result.rejected[part] = f"cannot list it to prune: {refusal}"
                    continue
                owned[group] = {item["metadata"]["name"] for item in listed}
            if name not in owned[group]:
                result.released.append(part)  # gone, or not labelled meshc's: never touched
                continue
            self._writes += 1
            checkpoint(f"kubernetes-prune-{self._writes}")
            try:
                self.cluster.delete(api_version, kind, namespace, name)
            except ApiRefusal as refusal:
                result.rejected[part] = f"cannot prune it: {refusal}"
                result.inventory[part] = previous[part]
                continue
            result.pruned.append(part)
            result.order.append(part)
            self._event(
                {
                    "apiVersion": api_version,
                    "kind": kind,
                    "metadata": {"namespace": namespace, "name": name},
                },
                "Pruned",
                f"pruned by meshc: revision {revision[:12]} no longer has it",
            )

    # -- events and the journal ----------------------------------------------------------

    def _event(self, obj: Mapping[str, Any], reason: str, message: str) -> None:
        """A core v1 Event on the object (best effort: a lost Event never fails a pass)."""
        meta = obj["metadata"]
        namespace = meta.get("namespace") or "default"
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{secrets.token_hex(8)}", "namespace": namespace},
            "involvedObject": {
                "apiVersion": obj["apiVersion"],
                "kind": obj["kind"],
                "namespace": namespace,
                "name": meta["name"],
                **({"uid": meta["uid"]} if meta.get("uid") else {}),
            },
            "reason": reason,
            "message": message,
            "type": "Normal",
            "source": {"component": "meshd"},
            "reportingComponent": "meshd",
            "reportingInstance": os.uname().nodename,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            self.cluster.create(event)
        except (ApiRefusal, ClusterUnavailable) as exc:
            log.info("Event %s on %s/%s not recorded: %s", reason, namespace, meta["name"], exc)

    def _journalled(self) -> list[str]:
        if self.journal is None:
            return []
        try:
            parts = json.loads(self.journal.read_text())
        except (OSError, ValueError):
            return []
        return [str(part) for part in parts] if isinstance(parts, list) else []

    def _journal(self, parts: set[str]) -> None:
        """Write the parts this pass may leave in the cluster, through a rename."""
        if self.journal is None:
            return
        scratch = self.journal.with_name(f".{self.journal.name}.tmp")
        try:
            scratch.write_text(json.dumps(sorted(parts)))
            os.replace(scratch, self.journal)
        except OSError as exc:
            raise MeshdError(
                f"{self.journal}: cannot record the objects this pass may create "
                f"({exc.strerror}); check the state directory's permissions and free space"
            ) from None


def _hand_edits_only(live: dict[str, Any] | None, refusal: ApiRefusal) -> bool:
    """Every manager in the conflict changed the object with an Update (kubectl edit,
    patch, replace), none declared it with an Apply."""
    if live is None:
        return False
    operations = {
        entry.get("manager"): entry.get("operation")
        for entry in live["metadata"].get("managedFields") or []
    }
    return all(operations.get(manager) == "Update" for manager, _ in refusal.conflicts)


def _prunable(part: str) -> bool:
    _, kind, _, name = split_part(part)
    return kind != "Namespace" and not (kind == "Secret" and name == CACERTS)


def _prune_order(part: str) -> tuple[int, str]:
    """Denials first, references last: the reverse of the apply order."""
    api_version, kind, _, _ = split_part(part)
    stub = {"apiVersion": api_version, "kind": kind, "spec": {}}
    return (-wave(stub), part)
