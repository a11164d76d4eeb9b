"""Where a local mesh listens: free 127.0.0.1 ports for every instance, as a `Placement`.

The compiler never picks addresses (placement is an explicit input of the Envoy backend),
so `meshd up` allocates them here: for each instance of each service (one per version, or
as many as `versions.*.endpoints` lists), a sidecar inbound port and an application port
per service port, an outbound HTTP listener when the service calls anything, a dedicated
outbound listener per called TCP port, and an Envoy admin port. The kernel picks every
port (bind to port 0), so two meshes and other programs do not collide; a port asked for
explicitly that is taken is refused with a message naming it.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from compiler.model.mesh import MeshSnapshot, ServiceKey, ServiceView
from compiler.model.placement import Address, InstancePlacement, Placement
from reconciler.errors import MeshdError

LOCALHOST = "127.0.0.1"


class PortError(MeshdError):
    code = 1


@dataclass(frozen=True, slots=True)
class LocalMesh:
    """The placement plus what only the local mesh needs: each node's Envoy admin port."""

    placement: Placement
    admin: Mapping[str, Address]


PortSource = Callable[[], int]


def free_port() -> int:
    """A port the kernel reports free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOCALHOST, 0))
        return int(probe.getsockname()[1])


def check_port_free(port: int, *, what: str) -> None:
    """Refuse a port asked for explicitly that something already listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((LOCALHOST, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortError(
                    f"{what}: port {LOCALHOST}:{port} is already in use; stop what listens "
                    f"there (`ss -ltnp 'sport = :{port}'` shows it) or choose another port"
                ) from None
            raise PortError(f"{what}: cannot bind {LOCALHOST}:{port}: {exc.strerror}") from None


def _distinct(source: PortSource) -> PortSource:
    """Never hand out the same port twice in one allocation (the kernel may reuse one
    whose probe socket is already closed)."""
    given: set[int] = set()

    def next_port() -> int:
        for _ in range(1000):
            port = source()
            if port not in given:
                given.add(port)
                return port
        raise PortError("cannot find enough free ports on 127.0.0.1; close some programs")

    return next_port


def instance_count(view: ServiceView, version: str) -> int:
    """One instance per version, or one per endpoint the version lists."""
    if not version:
        return 1
    return max(1, len(view.spec.versions[version].endpoints))


def instances(model: MeshSnapshot) -> Iterator[tuple[ServiceView, str, int]]:
    """Every (service, version, index) in a stable order."""
    for key in sorted(model.services):
        view = model.services[key]
        versions = sorted(view.spec.versions) or [""]
        for version in versions:
            for index in range(instance_count(view, version)):
                yield view, version, index


def _tcp_ports(model: MeshSnapshot, callee: ServiceKey) -> list[int]:
    view = model.services.get(callee)
    if view is None:
        return []
    return sorted(int(p.port) for p in view.spec.ports if p.protocol == "tcp")


def allocate(model: MeshSnapshot, *, next_port: PortSource = free_port) -> LocalMesh:
    """A placement for every instance of `model`, with an admin port per node."""
    port = _distinct(next_port)

    def address() -> Address:
        return Address(LOCALHOST, port())

    placement: dict[str, InstancePlacement] = {}
    admin: dict[str, Address] = {}
    for view, version, index in instances(model):
        service_ports = sorted(int(p.port) for p in view.spec.ports)
        tcp_outbound = {
            (callee, tcp_port): address()
            for callee in sorted(set(view.calls))
            for tcp_port in _tcp_ports(model, callee)
        }
        instance = InstancePlacement(
            service=view.key,
            version=version,
            index=index,
            inbound={p: address() for p in service_ports},
            app={p: address() for p in service_ports},
            outbound=address() if view.calls else None,
            tcp_outbound=tcp_outbound,
        )
        placement[instance.node_id] = instance
        admin[instance.node_id] = address()
    return LocalMesh(placement=placement, admin=admin)


def reuse(previous: LocalMesh, model: MeshSnapshot) -> LocalMesh:
    """A placement for an edited tree that keeps every existing node's ports (its Envoy and
    backend keep running) and allocates only for new nodes or new ports."""
    fresh = allocate(model, next_port=_excluding(previous))
    placement: dict[str, InstancePlacement] = {}
    admin: dict[str, Address] = {}
    for node_id, new in fresh.placement.items():
        old = previous.placement.get(node_id)
        admin[node_id] = previous.admin.get(node_id, fresh.admin[node_id])
        if old is None:
            placement[node_id] = new
            continue
        placement[node_id] = InstancePlacement(
            service=new.service,
            version=new.version,
            index=new.index,
            inbound={p: old.inbound.get(p, a) for p, a in new.inbound.items()},
            app={p: old.app.get(p, a) for p, a in new.app.items()},
            outbound=(old.outbound or new.outbound) if new.outbound is not None else None,
            tcp_outbound={k: old.tcp_outbound.get(k, a) for k, a in new.tcp_outbound.items()},
        )
    return LocalMesh(placement=placement, admin=admin)


def _excluding(previous: LocalMesh) -> PortSource:
    taken = {a.port for a in previous.admin.values()}
    for instance in previous.placement.values():
        taken.update(a.port for a in instance.inbound.values())
        taken.update(a.port for a in instance.app.values())
        taken.update(a.port for a in instance.tcp_outbound.values())
        if instance.outbound is not None:
            taken.add(instance.outbound.port)

    def next_port() -> int:
        for _ in range(1000):
            candidate = free_port()
            if candidate not in taken:
                return candidate
        raise PortError("cannot find enough free ports on 127.0.0.1; close some programs")

    return next_port
