"""Calls that leave the mesh: which Externals a service calls, and who calls an External.

`calls:` names Services and Externals alike; these are the one answer to "is this callee
outside the mesh" for the backends (ServiceEntry, Sidecar, NetworkPolicy) and the plan.
"""

from __future__ import annotations

from compiler.model.mesh import ExternalView, MeshModel, ServiceKey, ServiceView


def external_calls(model: MeshModel, view: ServiceView) -> tuple[ExternalView, ...]:
    """The declared Externals among `view`'s calls, in the order written (a Service of the
    same key wins: lint reports the clash)."""
    found = []
    for callee in view.calls:
        if model.services.get(callee) is not None:
            continue
        external = model.externals.get(callee)
        if external is not None and external not in found:
            found.append(external)
    return tuple(found)


def external_callers(model: MeshModel, key: ServiceKey) -> tuple[ServiceKey, ...]:
    """The services that call External `key`, sorted (reads every service)."""
    return tuple(sorted(view.key for view in model.services.values() if key in view.calls))
