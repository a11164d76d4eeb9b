"""Placement allocation for a local mesh: every instance gets distinct free ports."""

from __future__ import annotations

import itertools
import socket

import pytest

from compiler.api import compile_tree, load_tree
from compiler.model.mesh import ServiceKey
from reconciler.up.ports import PortError, allocate, check_port_free, reuse
from tests.helpers import NOW, REPO, compile_files

SHOP = {
    "shop.yaml": """\
    apiVersion: meshc/v1
    kind: Service
    metadata: {name: web, namespace: shop}
    spec:
      ports: [{name: http, port: 8080, protocol: http}]
      versions:
        v1: {endpoints: ["10.0.0.1:8080", "10.0.0.2:8080"]}
      calls: [db]
    ---
    apiVersion: meshc/v1
    kind: Service
    metadata: {name: db, namespace: shop}
    spec:
      ports: [{name: pg, port: 5432, protocol: tcp}, {name: http, port: 8000, protocol: http}]
    """,
}


def _all_ports(mesh: object) -> list[int]:
    placement = mesh.placement  # type: ignore[attr-defined]
    admin = mesh.admin  # type: ignore[attr-defined]
    ports = [a.port for a in admin.values()]
    for instance in placement.values():
        ports += [a.port for a in instance.inbound.values()]
        ports += [a.port for a in instance.app.values()]
        ports += [a.port for a in instance.tcp_outbound.values()]
        ports += [instance.outbound.port] if instance.outbound else []
    return ports


def test_bookinfo_gets_one_instance_per_version_with_distinct_ports() -> None:
    compilation = compile_tree(load_tree(REPO / "policies"), now=NOW)
    mesh = allocate(compilation.model)
    assert sorted(mesh.placement) == [
        "details.bookinfo~v1~0",
        "productpage.bookinfo~v1~0",
        "ratings.bookinfo~v1~0",
        "reviews.bookinfo~v1~0",
        "reviews.bookinfo~v2~0",
        "reviews.bookinfo~v3~0",
    ]
    product = mesh.placement["productpage.bookinfo~v1~0"]
    assert set(product.inbound) == set(product.app) == {9080}
    assert product.outbound is not None
    assert mesh.placement["details.bookinfo~v1~0"].outbound is None  # calls nothing
    ports = _all_ports(mesh)
    assert len(ports) == len(set(ports)) == 6 * 3 + 4
    assert all(a.host == "127.0.0.1" for a in mesh.admin.values())


def test_endpoints_count_instances_and_tcp_callees_get_their_own_listener() -> None:
    mesh = allocate(compile_files(SHOP).model)
    assert sorted(mesh.placement) == ["db.shop~~0", "web.shop~v1~0", "web.shop~v1~1"]
    web = mesh.placement["web.shop~v1~1"]
    assert set(web.tcp_outbound) == {(ServiceKey("shop", "db"), 5432)}
    assert set(mesh.placement["db.shop~~0"].inbound) == {5432, 8000}


def test_the_same_port_is_never_handed_out_twice() -> None:
    repeating = itertools.cycle([40001, 40001, 40002, 40003, 40002]).__next__
    counter = itertools.count(40004)
    mesh = allocate(compile_files(SHOP).model, next_port=lambda: max(repeating(), next(counter)))
    ports = _all_ports(mesh)
    assert len(ports) == len(set(ports))


def test_a_port_source_that_runs_dry_is_a_clear_error() -> None:
    with pytest.raises(PortError, match="cannot find enough free ports"):
        allocate(compile_files(SHOP).model, next_port=lambda: 40001)


def test_reuse_keeps_existing_nodes_ports_and_allocates_new_ones() -> None:
    before = allocate(compile_files(SHOP).model)
    edited = dict(SHOP)
    edited["shop.yaml"] = SHOP["shop.yaml"].replace(
        '"10.0.0.2:8080"]', '"10.0.0.2:8080", "10.0.0.3:8080"]'
    )
    after = reuse(before, compile_files(edited).model)
    for node_id, instance in before.placement.items():
        assert after.placement[node_id] == instance
        assert after.admin[node_id] == before.admin[node_id]
    assert "web.shop~v1~2" in after.placement
    ports = _all_ports(after)
    assert len(ports) == len(set(ports))


def test_a_taken_port_is_refused_with_its_number() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(PortError, match=f"--xds-port: port 127.0.0.1:{port} is already in use"):
            check_port_free(port, what="--xds-port")
