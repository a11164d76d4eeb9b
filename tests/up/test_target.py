"""The local mesh target's render: one snapshot per placed node, each running as its
service's SPIFFE ID, ports kept across revisions, and an empty revision refused."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from compiler.api import compile_tree, load_tree
from reconciler.errors import MeshdError
from reconciler.loop import utc_now
from reconciler.up.credentials import temporary_ca
from reconciler.up.target import LocalMeshTarget
from tests.helpers import MESH, NOW, REPO, compile_files


def _target(tmp_path: Path) -> LocalMeshTarget:
    unused: Any = None  # render touches neither the control plane, the CA nor processes
    return LocalMeshTarget(xds=unused, xds_port=1, ca=unused, supervisor=unused, workdir=tmp_path)


def test_bookinfo_renders_a_snapshot_per_node(tmp_path: Path) -> None:
    desired = _target(tmp_path).render(compile_tree(load_tree(REPO / "policies"), now=NOW))
    assert sorted(desired.snapshots) == sorted(desired.mesh.placement)
    reviews = desired.snapshots["reviews.bookinfo~v3~0"]
    assert reviews.identity == "spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews"
    assert desired.services["bookinfo/productpage"].calls == (
        "bookinfo/details",
        "bookinfo/reviews",
    )
    assert desired.services["bookinfo/reviews"].host == "reviews.bookinfo.svc.cluster.local"
    assert desired.trust_domain == "cluster.local"


def test_a_later_revision_keeps_the_ports_of_running_nodes(tmp_path: Path) -> None:
    target = _target(tmp_path)
    compilation = compile_tree(load_tree(REPO / "policies"), now=NOW)
    target.current = target.render(compilation)
    again = target.render(compile_tree(load_tree(REPO / "policies"), now=NOW))
    assert again.mesh == target.current.mesh


def test_a_revision_without_services_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MeshdError, match="declares no Service; the running workloads are kept"):
        _target(tmp_path).render(compile_files({"mesh.yaml": MESH}))


class RecordingSupervisor:
    def __init__(self, nodes: list[str]) -> None:
        self.proxies = dict.fromkeys(nodes)
        self.replaced: list[str] = []

    async def replace(self, node_id: str) -> None:
        self.replaced.append(node_id)


def test_xds_client_certificates_are_renewed_at_half_life(tmp_path: Path) -> None:
    ca = temporary_ca(tmp_path / "ca", "cluster.local", utc_now())
    supervisor = RecordingSupervisor(["a~v1~0", "b~v1~0"])
    unused: Any = None
    target = LocalMeshTarget(
        xds=unused,
        xds_port=1,
        ca=ca,
        supervisor=supervisor,
        workdir=tmp_path,  # type: ignore[arg-type]
    )
    first = target._write_credential("a~v1~0", "spiffe://cluster.local/ns/x/sa/a")
    serial = first.certificate_chain.read_bytes()
    identity, due = target.renew_at["a~v1~0"]
    assert identity == "spiffe://cluster.local/ns/x/sa/a"
    assert asyncio.run(target.renew_credentials(due - timedelta(seconds=1))) == []
    assert asyncio.run(target.renew_credentials(due)) == ["a~v1~0"]
    assert supervisor.replaced == ["a~v1~0"]
    assert first.certificate_chain.read_bytes() != serial  # a new certificate on disk
    assert first.private_key.stat().st_mode & 0o777 == 0o600
