"""What every emitted Istio object shares: ownership metadata, hosts, principals, durations.

Each emitted-object module builds plain dicts through these helpers so that labels,
annotations and value forms are decided in exactly one place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from compiler.kinds.common import duration_ms
from compiler.model.mesh import MeshModel, ServiceKey, ServiceView
from compiler.provenance import SOURCE

MANAGED_BY = "app.kubernetes.io/managed-by"
PART_OF = "app.kubernetes.io/part-of"
DRY_RUN = "istio.io/dry-run"

SECURITY = "security.istio.io/v1"
NETWORKING = "networking.istio.io/v1"
K8S_NETWORKING = "networking.k8s.io/v1"

ENVOY_METRICS_PORTS = (15020, 15090)
"""Envoy's merged-metrics and stats ports, which the monitoring namespace scrapes."""

Obj = dict[str, Any]


class LowerContext:
    """The inputs every emitter reads: the model, the time and the rollout state.

    Built by the backend's queries over the engine's recording readers, so whatever an
    emitter reads — another service, a setting, the clock, one Rollout's step — is a
    recorded dependency of the object it emits."""

    __slots__ = ("_now", "model", "rollout_state")

    def __init__(
        self, model: MeshModel, now: Callable[[], datetime], rollout_state: Mapping[str, int]
    ) -> None:
        self.model = model
        self._now = now
        self.rollout_state = rollout_state

    @property
    def now(self) -> datetime:
        return self._now()

    @property
    def mesh_source(self) -> str:
        """Provenance for mesh-wide objects (the Mesh document, or the defaults)."""
        return self.model.mesh.ref if self.model.mesh else "(mesh defaults)"

    @property
    def mesh_namespace(self) -> str:
        """The namespace a bare service name in the Mesh document refers to."""
        return self.model.mesh.model.metadata.namespace if self.model.mesh else "default"


def new_object(
    ctx: LowerContext, *, api_version: str, kind: str, name: str, namespace: str, source: str
) -> Obj:
    """An object skeleton with meshc's ownership labels and its one provenance annotation.

    No revision or line number: they would change every object on every commit.
    """
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {MANAGED_BY: "meshc", PART_OF: ctx.model.name},
            "annotations": {SOURCE: source},
        },
    }


def host(ctx: LowerContext, key: ServiceKey) -> str:
    """The service's cluster-local FQDN, the form Istio resolves unambiguously."""
    return f"{key.name}.{key.namespace}.svc.{ctx.model.settings.cluster_domain}"


def principal(ctx: LowerContext, namespace: str, service_account: str) -> str:
    """Istio's principal form: the SPIFFE ID without its `spiffe://` scheme."""
    return f"{ctx.model.settings.trust_domain}/ns/{namespace}/sa/{service_account}"


def resolve_service(ctx: LowerContext, ref: str, namespace: str) -> ServiceView | None:
    """The service a reference names (parsed keys are memoised and interned, so this is
    a cache hit and an identity-matched dict lookup for the references rules repeat)."""
    return ctx.model.services.get(ServiceKey.parse(ref, namespace))


def istio_duration(text: str) -> str:
    """A user duration in the form Istio (Go's time.ParseDuration) accepts, normalised.

    `30d` → `720h` (Go has no day unit), `1m30s` → `90s`, `500ms` stays: the largest
    unit that divides the value exactly, so equal durations always render equally.
    """
    ms = duration_ms(text)
    if ms != int(ms):
        return f"{_trim(ms)}ms"
    whole = int(ms)
    if whole % 1000:
        return f"{whole}ms"
    seconds = whole // 1000
    if seconds and seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds and seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def _trim(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")
