"""The Envoy backend's output: golden JSON per resource kind for bookinfo with a fixed
placement, every node of bookinfo and the rich fixture accepted by the real Envoy, and
stable names (a change to one service leaves every other resource byte-identical)."""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path

import pytest

from compiler.artifacts import ArtifactKey, Artifacts
from compiler.lower import lower
from compiler.lower.envoy.dump import SECTIONS, resource_json
from compiler.lower.envoy.snapshot import CLUSTER, LISTENER
from tests.helpers import write_tree
from tests.lower.envoy.support import (
    compile_placed,
    envoy_validate,
    findings_of,
    make_certificates,
    snapshots_of,
    static_bootstrap,
)
from tests.lower.support import BOOKINFO, RICH

GOLDEN = Path(__file__).resolve().parent / "golden"
REGENERATE = "UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/lower/envoy"


@pytest.mark.parametrize(("section", "type_url"), SECTIONS)
def test_bookinfo_golden_per_resource_kind(section: str, type_url: str) -> None:
    snapshots = snapshots_of(compile_placed(BOOKINFO))
    dump = {
        node: {name: resource_json(r) for name, r in sorted(s.resources[type_url].items())}
        for node, s in snapshots.items()
    }
    text = json.dumps(dump, indent=2, sort_keys=True) + "\n"
    path = GOLDEN / "bookinfo" / f"{section}.json"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"golden file {path} is missing; create it with: {REGENERATE}")
    expected = path.read_text(encoding="utf-8")
    if text != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True), text.splitlines(keepends=True), "golden", "now"
            )
        )
        pytest.fail(f"{path.name} differs; if intended: {REGENERATE}\n{diff[:20000]}")


@pytest.mark.parametrize("root", [BOOKINFO, RICH], ids=["bookinfo", "rich"])
def test_every_snapshot_is_accepted_by_envoy(root: Path, tmp_path: Path) -> None:
    compilation = compile_placed(root)
    snapshots = snapshots_of(compilation)
    assert snapshots, "the fixed placement places every service version"
    assert findings_of(compilation) == ()
    certs = make_certificates()
    for node, snapshot in snapshots.items():
        result = envoy_validate(static_bootstrap(snapshot, certs), tmp_path)
        assert result.returncode == 0, f"{node}: {result.stdout}{result.stderr}"


def test_envoy_validation_rejects_a_broken_snapshot(tmp_path: Path) -> None:
    """The check above has teeth: a route to a cluster the node does not have fails."""
    snapshot = next(iter(snapshots_of(compile_placed(BOOKINFO)).values()))
    bootstrap = static_bootstrap(snapshot, make_certificates())
    listener = bootstrap["staticResources"]["listeners"][0]
    manager = listener["filterChains"][0]["filters"][0]["typedConfig"]
    manager["routeConfig"]["validateClusters"] = True
    manager["routeConfig"]["virtualHosts"][0]["routes"][0]["route"]["cluster"] = "missing"
    result = envoy_validate(bootstrap, tmp_path)
    assert result.returncode != 0
    assert "missing" in result.stdout + result.stderr


def _by_key(artifacts: Artifacts) -> dict[ArtifactKey, str]:
    return {key: json.dumps(obj, sort_keys=True) for key, obj in artifacts}


def test_a_change_to_one_service_touches_only_its_resources(tmp_path: Path) -> None:
    """A new timeout for ratings changes the route configurations of its callers (reviews)
    and nothing else; the names of every resource stay the same."""
    root = tmp_path / "policies"
    files = {p.name: p.read_text() for p in BOOKINFO.glob("*.yaml")}
    write_tree(root, files)
    before = _by_key(lower(compile_placed(root), target="envoy"))
    (root / "ratings.yaml").write_text(files["ratings.yaml"].replace("timeout: 2s", "timeout: 3s"))
    after = _by_key(lower(compile_placed(root), target="envoy"))
    assert set(before) == set(after)
    changed = sorted(key for key in before if before[key] != after[key])
    assert changed, "the timeout must show somewhere"
    assert all(
        key.scope.startswith("reviews.") and key.kind == "RouteConfiguration" for key in changed
    )
    assert all('"3s"' in after[key] for key in changed)


def test_names_are_stable_and_typed() -> None:
    snapshots = snapshots_of(compile_placed(BOOKINFO))
    productpage = snapshots["productpage.bookinfo~v1~0"]
    assert sorted(productpage.resources[LISTENER]) == ["inbound|9080", "outbound|http"]
    assert sorted(productpage.resources[CLUSTER]) == sorted(
        [
            "inbound|9080||",
            "outbound|9080||details.bookinfo.svc.cluster.local",
            "outbound|9080|v1|reviews.bookinfo.svc.cluster.local",
            "outbound|9080|v2|reviews.bookinfo.svc.cluster.local",
            "outbound|9080|v3|reviews.bookinfo.svc.cluster.local",
        ]
    )


def test_the_denial_header_is_the_one_meshd_call_reads() -> None:
    from compiler.lower.envoy.listener import DENIED_BY
    from reconciler.up.headers import DENIED_BY as READ_BY_CALL

    assert DENIED_BY == READ_BY_CALL
