"""EDS: where the instances of one destination version accept mutual TLS — each
instance's sidecar `inbound` address for the port, from the placement."""

from __future__ import annotations

from collections.abc import Iterable

from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2

from compiler.lower.envoy.common import socket_address
from compiler.model.placement import InstancePlacement


def load_assignment(
    name: str, instances: Iterable[InstancePlacement], port: int
) -> endpoint_pb2.ClusterLoadAssignment:
    """The cluster `name`'s endpoints: the `instances` (of the right version) that
    accept service port `port`, by node id. None found: an empty assignment (Envoy then
    answers 503 no healthy upstream, never another version's instance)."""
    placed = sorted(
        (instance.node_id, instance.inbound[port])
        for instance in instances
        if port in instance.inbound
    )
    lb_endpoints = [
        endpoint_components_pb2.LbEndpoint(
            endpoint=endpoint_components_pb2.Endpoint(address=socket_address(address))
        )
        for _, address in placed
    ]
    assignment = endpoint_pb2.ClusterLoadAssignment(cluster_name=name)
    if lb_endpoints:
        assignment.endpoints.append(
            endpoint_components_pb2.LocalityLbEndpoints(lb_endpoints=lb_endpoints)
        )
    return assignment
