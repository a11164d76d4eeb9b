"""The Istio backend: the resolved model → Kubernetes objects of Istio's v1 APIs.

One module per emitted object kind; this one only runs them in a fixed order. Every
function here is pure: the same model, time and rollout state give the same objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from compiler.lower.istio.authorization_policy import lower_authorization_policies
from compiler.lower.istio.common import LowerContext, Obj
from compiler.lower.istio.destination_rule import lower_destination_rules
from compiler.lower.istio.network_policy import lower_network_policies
from compiler.lower.istio.peer_authentication import lower_peer_authentications
from compiler.lower.istio.sidecar import lower_sidecars
from compiler.lower.istio.virtual_service import lower_virtual_services
from compiler.model.mesh import MeshModel

LOWERINGS = (
    lower_peer_authentications,
    lower_authorization_policies,
    lower_destination_rules,
    lower_sidecars,
    lower_virtual_services,
    lower_network_policies,
)


def lower_istio(model: MeshModel, *, now: datetime, rollout_state: Mapping[str, int]) -> list[Obj]:
    ctx = LowerContext(model=model, now=now, rollout_state=rollout_state)
    return [obj for lowering in LOWERINGS for obj in lowering(ctx)]
