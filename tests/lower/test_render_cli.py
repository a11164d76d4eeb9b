"""`meshc render` end to end: the real binary for the main paths, click's runner in-process
for the rest (a fresh CLI process pays its import time on every call)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml  # type: ignore[import-untyped]
from click.testing import CliRunner

from compiler.cli import cli
from tests.helpers import REPO, run_cli, write_tree
from tests.lower.support import REFERENCE_CRDS
from tests.verify.test_crds import RESILIENCE, virtual_service_crd

NOW = "2026-11-25T12:00:00Z"
POLICIES = str(REPO / "policies")


def invoke(*args: str) -> subprocess.CompletedProcess[str]:
    """Run `meshc <args>` in-process; the same exit codes and streams as the binary."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def test_render_streams_bookinfo_as_yaml_byte_identically() -> None:
    first = run_cli("meshc", "render", POLICIES, "--now", NOW)
    assert first.returncode == 0, first.stderr
    docs = list(yaml.safe_load_all(first.stdout))
    assert len(docs) == 20
    kinds = {d["kind"] for d in docs}
    assert kinds == {
        "AuthorizationPolicy",
        "DestinationRule",
        "NetworkPolicy",
        "PeerAuthentication",
        "Sidecar",
        "VirtualService",
    }
    assert first.stdout.startswith(
        "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
    )
    second = invoke("render", POLICIES, "--now", NOW)
    assert second.stdout == first.stdout, "the binary and a second run print the same bytes"


def test_render_json_is_a_kubernetes_list() -> None:
    result = invoke("render", POLICIES, "--now", NOW, "--format", "json")
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    assert listing["kind"] == "List" and len(listing["items"]) == 20


def test_render_out_writes_one_file_per_object_and_prunes_only_its_own(tmp_path: Path) -> None:
    out = tmp_path / "rendered"
    stale = out / "bookinfo" / "sidecar.networking.gone.yaml"
    stale.parent.mkdir(parents=True)
    stale.write_text("metadata:\n  labels:\n    app.kubernetes.io/managed-by: meshc\n")
    foreign = out / "bookinfo" / "kustomization.yaml"
    foreign.write_text("resources: []\n")
    result = invoke("render", POLICIES, "--now", NOW, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "wrote 20 object(s)" in result.stderr
    vs = out / "bookinfo" / "virtualservice.networking.reviews.yaml"
    assert yaml.safe_load(vs.read_text())["spec"]["hosts"] == ["reviews.bookinfo.svc.cluster.local"]
    assert (out / "istio-system" / "peerauthentication.security.default.yaml").is_file()
    assert not stale.exists(), "an object meshc no longer emits is removed"
    assert foreign.exists(), "files meshc did not write are kept"
    assert len(list(out.rglob("*.yaml"))) == 21


def test_render_refuses_a_tree_with_errors(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {
            "a.yaml": "apiVersion: meshc/v1\nkind: Service\nmetadata: {name: a}\n"
            "spec: {ports: [{name: http, port: 80}], calls: [nowhere]}\n"
        },
    )
    result = run_cli("meshc", "render", str(root), "--now", NOW)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "a.yaml:4:" in result.stderr and "nowhere" in result.stderr
    assert "policy tree does not compile" in result.stderr


def test_rollout_state_moves_the_canary_and_malformed_state_is_a_located_usage_error(
    tmp_path: Path,
) -> None:
    rich = str(REPO / "tests" / "lower" / "fixtures" / "rich")
    state = tmp_path / "state.yaml"
    state.write_text("shop/catalog: 1\n")
    result = invoke("render", rich, "--now", NOW, "--rollout-state", str(state))
    assert result.returncode == 0, result.stderr
    vs = next(
        d
        for d in yaml.safe_load_all(result.stdout)
        if d["kind"] == "VirtualService" and d["metadata"]["name"] == "catalog"
    )
    assert [r["weight"] for r in vs["spec"]["http"][-1]["route"]] == [50, 50]
    state.write_text("shop/catalog: 1\nshop/cart: two\n")
    bad = invoke("render", rich, "--now", NOW, "--rollout-state", str(state))
    assert bad.returncode == 2
    assert f"{state}:2:12: rollout state: shop/cart: 'two' is not a step index" in bad.stderr
    assert "Traceback" not in bad.stderr
    missing = invoke("render", rich, "--rollout-state", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "nope.yaml: cannot read" in missing.stderr


def test_bad_path_and_bad_now_are_usage_errors(tmp_path: Path) -> None:
    result = invoke("render", str(tmp_path / "absent"))
    assert result.returncode == 2 and "no such file or directory" in result.stderr
    result = invoke("render", POLICIES, "--now", "yesterday")
    assert result.returncode == 2 and "'yesterday' is not a time" in result.stderr


def test_crds_flag_fails_on_a_field_the_users_istio_lacks_at_the_intent_line(
    tmp_path: Path,
) -> None:
    root = write_tree(
        tmp_path / "tree",
        {
            "r.yaml": RESILIENCE,
            "mesh.yaml": "apiVersion: meshc/v1\nkind: Mesh\nmetadata: {name: m}\n",
        },
    )
    crds = tmp_path / "old-istio.yaml"
    crds.write_text(json.dumps(virtual_service_crd(retries_fields=("attempts",))))
    result = invoke("render", str(root), "--now", NOW, "--crds", str(crds))
    assert result.returncode == 1
    assert result.stdout == ""
    assert "r.yaml:13:26: error[MC190]" in result.stderr
    assert "unknown field 'perTryTimeout'" in result.stderr
    assert "nothing written" in result.stderr
    current = tmp_path / "istio.yaml"
    current.write_text(json.dumps(virtual_service_crd()))
    ok = invoke("render", str(root), "--now", NOW, "--crds", str(current))
    assert ok.returncode == 0, ok.stderr
    assert (
        "note: --crds: no CRD for DestinationRule (networking.istio.io/v1); not checked"
        in ok.stderr
    )
    unreadable = invoke("render", str(root), "--crds", str(tmp_path / "absent.yaml"))
    assert unreadable.returncode == 2 and "absent.yaml: cannot read CRD file" in unreadable.stderr


def test_crds_flag_with_istios_published_crds_passes_bookinfo() -> None:
    if not REFERENCE_CRDS.is_file():
        import pytest

        reason = f"Istio's CRD file is not at {REFERENCE_CRDS}; check skipped"
        print(reason)
        pytest.skip(reason)
    result = invoke("render", POLICIES, "--now", NOW, "--crds", str(REFERENCE_CRDS))
    assert result.returncode == 0, result.stderr
    assert len(list(yaml.safe_load_all(result.stdout))) == 20


def test_a_file_path_renders_only_the_objects_from_that_file() -> None:
    result = invoke("render", str(REPO / "policies" / "reviews.yaml"), "--now", NOW)
    assert result.returncode == 0, result.stderr
    docs = list(yaml.safe_load_all(result.stdout))
    assert sorted((d["kind"], d["metadata"]["name"]) for d in docs) == [
        ("AuthorizationPolicy", "reviews-allow"),
        ("DestinationRule", "reviews"),
        ("NetworkPolicy", "reviews"),
        ("Sidecar", "reviews"),
        ("VirtualService", "reviews"),
    ]
    assert all(
        d["metadata"]["annotations"]["meshc.io/source"].startswith("reviews.yaml#") for d in docs
    )


def test_an_unwritable_out_directory_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = invoke("render", POLICIES, "--now", NOW, "--out", str(blocker / "sub"))
    assert result.returncode == 2
    assert f"meshc render: cannot write under {blocker / 'sub'}" in result.stderr
    assert "choose a writable directory" in result.stderr


def test_time_dependent_output_says_when_it_was_evaluated_and_json_files_under_out(
    tmp_path: Path,
) -> None:
    rich = str(REPO / "tests" / "lower" / "fixtures" / "rich")
    result = invoke("render", rich, "--out", str(tmp_path), "--format", "json")
    assert result.returncode == 0, result.stderr
    assert "note: evaluated at " in result.stderr and "pin it with --now" in result.stderr
    pa = json.loads(
        (tmp_path / "istio-system" / "peerauthentication.security.default.json").read_text()
    )
    assert pa["spec"] == {"mtls": {"mode": "STRICT"}}
    pinned = invoke("render", POLICIES, "--now", NOW)
    assert "evaluated at" not in pinned.stderr
