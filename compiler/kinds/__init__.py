"""The intent kinds. Each kind is one package: `model.py` (the pydantic model) and
`checks.py` (its lint rules). This registry is the one place that lists them."""

from __future__ import annotations

from pydantic import BaseModel

from compiler.kinds.access_policy.model import AccessPolicyDocument
from compiler.kinds.mesh.model import MeshDocument
from compiler.kinds.resilience.model import ResilienceDocument
from compiler.kinds.rollout.model import RolloutDocument
from compiler.kinds.service.model import ServiceDocument

KINDS: dict[str, type[BaseModel]] = {
    "Mesh": MeshDocument,
    "Service": ServiceDocument,
    "AccessPolicy": AccessPolicyDocument,
    "Rollout": RolloutDocument,
    "Resilience": ResilienceDocument,
}

KIND_NAMES = frozenset(KINDS)


def load_checks() -> None:
    """Import every kind's checks so their rules register (idempotent)."""
    from compiler.kinds.access_policy import checks as _access  # noqa: F401
    from compiler.kinds.access_policy import header_checks as _access_headers  # noqa: F401
    from compiler.kinds.mesh import ca_checks as _mesh_ca  # noqa: F401
    from compiler.kinds.mesh import checks as _mesh  # noqa: F401
    from compiler.kinds.resilience import checks as _resilience  # noqa: F401
    from compiler.kinds.resilience import tcp_checks as _resilience_tcp  # noqa: F401
    from compiler.kinds.rollout import checks as _rollout  # noqa: F401
    from compiler.kinds.rollout import http_checks as _rollout_http  # noqa: F401
    from compiler.kinds.service import checks as _service  # noqa: F401
    from compiler.lint import loader_rules as _loader  # noqa: F401
