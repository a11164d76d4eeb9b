"""Stage 3: the resolved mesh — services, identities, versions and both access graphs."""

from compiler.model.graph import Edge, Peer, allowed_edges, effective_edges
from compiler.model.mesh import MeshModel, MeshSnapshot, ServiceKey, ServiceView

__all__ = [
    "Edge",
    "MeshModel",
    "MeshSnapshot",
    "Peer",
    "ServiceKey",
    "ServiceView",
    "allowed_edges",
    "effective_edges",
]
