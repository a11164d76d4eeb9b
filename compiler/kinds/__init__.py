"""The intent kinds. Each kind is one package: `model.py` (the pydantic model) and
`checks.py` (its lint rules). `REGISTRY` is the one place that lists them: the loader
validates with it, and the model resolves documents by the role it gives each kind."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from compiler.kinds.access_policy.model import AccessPolicyDocument
from compiler.kinds.external.model import ExternalDocument
from compiler.kinds.mesh.model import MeshDocument
from compiler.kinds.resilience.model import ResilienceDocument
from compiler.kinds.rollout.model import RolloutDocument
from compiler.kinds.service.model import ServiceDocument

Role = Literal["mesh", "service", "attached", "external"]


@dataclass(frozen=True, slots=True)
class Kind:
    """One intent kind: its document model and how the model resolves it.

    `mesh`: the mesh-wide settings (one per tree); `service`: declares a service;
    `attached`: written for one service through `spec.service`, and found in that
    service's view under the kind's name; `external`: declares a destination outside the
    mesh, which `calls:` names like a service (`MeshModel.externals`)."""

    document: type[BaseModel]
    role: Role


REGISTRY: dict[str, Kind] = {
    "Mesh": Kind(MeshDocument, "mesh"),
    "Service": Kind(ServiceDocument, "service"),
    "AccessPolicy": Kind(AccessPolicyDocument, "attached"),
    "Rollout": Kind(RolloutDocument, "attached"),
    "Resilience": Kind(ResilienceDocument, "attached"),
    "External": Kind(ExternalDocument, "external"),
}

KINDS: dict[str, type[BaseModel]] = {name: kind.document for name, kind in REGISTRY.items()}
KIND_NAMES = frozenset(KINDS)
ATTACHED_KINDS = tuple(name for name, kind in REGISTRY.items() if kind.role == "attached")
KEYED_KINDS = frozenset(
    name for name, kind in REGISTRY.items() if kind.role in ("service", "attached")
)
"""Kinds whose documents are written for one service key (their own, or `spec.service`)."""


def load_checks() -> None:
    """Import every kind's checks so their rules register (idempotent)."""
    from compiler.kinds.access_policy import checks as _access  # noqa: F401
    from compiler.kinds.access_policy import header_checks as _access_headers  # noqa: F401
    from compiler.kinds.external import checks as _external  # noqa: F401
    from compiler.kinds.mesh import ca_checks as _mesh_ca  # noqa: F401
    from compiler.kinds.mesh import checks as _mesh  # noqa: F401
    from compiler.kinds.mesh import gateway_checks as _mesh_gateways  # noqa: F401
    from compiler.kinds.resilience import checks as _resilience  # noqa: F401
    from compiler.kinds.resilience import tcp_checks as _resilience_tcp  # noqa: F401
    from compiler.kinds.rollout import checks as _rollout  # noqa: F401
    from compiler.kinds.rollout import http_checks as _rollout_http  # noqa: F401
    from compiler.kinds.service import checks as _service  # noqa: F401
    from compiler.lint import bounds as _bounds  # noqa: F401
    from compiler.lint import loader_rules as _loader  # noqa: F401
    from compiler.lint import preflight_rules as _preflight  # noqa: F401
    from compiler.workloads.registry import load_workload_checks

    load_workload_checks()
