"""`meshc render --target envoy [--workload ...]`: each placed instance's snapshot as JSON,
findings on stderr, clear refusals for options that do not apply."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import run_cli, write_tree
from tests.lower.envoy.test_destinations import APP
from tests.lower.support import BOOKINFO


def test_render_prints_the_selected_workloads_snapshot(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "policies", {"app.yaml": APP})
    result = run_cli("meshc", "render", "--target", "envoy", "--workload", "api", str(root))
    assert result.returncode == 0, result.stderr
    snapshots = json.loads(result.stdout)
    assert sorted(snapshots) == ["api.shop~v1~0", "api.shop~v1~1"]
    first = snapshots["api.shop~v1~0"]
    assert first["node"] == {"id": "api.shop~v1~0", "cluster": "api.shop"}
    assert first["identity"] == "spiffe://cluster.local/ns/shop/sa/api"
    assert first["secrets"]["default"] == {"kind": "certificate", "identity": first["identity"]}
    listener = first["listeners"]["resources"][0]
    assert listener["name"] == "inbound|8080"
    assert listener["address"]["socketAddress"] == {"address": "10.0.0.1", "portValue": 15006}
    again = run_cli("meshc", "render", "--target", "envoy", "--workload", "shop/api", str(root))
    assert again.stdout == result.stdout, "the same bytes for the same input"


def test_render_refuses_unknown_workloads_and_misplaced_options(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "policies", {"app.yaml": APP})
    unknown = run_cli("meshc", "render", "--target", "envoy", "--workload", "nope", str(root))
    assert unknown.returncode == 2
    assert "'nope' names no placed workload" in unknown.stderr
    assert "api.shop~v1~0" in unknown.stderr
    istio = run_cli("meshc", "render", "--workload", "api", str(root))
    assert istio.returncode == 2
    assert "--target envoy" in istio.stderr
    out = run_cli("meshc", "render", "--target", "envoy", "--out", str(tmp_path / "o"), str(root))
    assert out.returncode == 2
    assert "Traceback" not in out.stderr + istio.stderr + unknown.stderr


def test_render_without_endpoints_says_how_to_place_instances() -> None:
    result = run_cli("meshc", "render", "--target", "envoy", str(BOOKINFO))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {}
    assert "versions.<version>.endpoints" in result.stderr
