"""The local mesh target's render: one snapshot per placed node, each running as its
service's SPIFFE ID, ports kept across revisions, and an empty revision refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from compiler.api import compile_tree, load_tree
from reconciler.errors import MeshdError
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
