"""From a fresh store through every rotation phase with the CLI: the Mesh edit it proposes
keeps comments and lints clean, and the ca-status snapshot makes plan refuse unsafe edits."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from compiler.kinds.mesh.ca_status import check_ca_status
from compiler.kinds.mesh.model import MeshSpec
from reconciler.ca.meshfile import load_mesh
from tests.ca.support import MESH_YAML, meshd_inproc
from tests.helpers import NOW, codes, compile_files


def run(*args: str, clock: datetime = NOW) -> str:
    result = meshd_inproc(*args, clock=clock)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def mesh_spec(path: Path) -> MeshSpec:
    return load_mesh(path).spec


def test_rotation_through_the_cli_with_git_edits(tmp_path: Path) -> None:
    state, mesh = tmp_path / "st", tmp_path / "mesh.yaml"
    mesh.write_text(MESH_YAML)
    t0, t1, t2 = NOW, NOW + timedelta(hours=1), NOW + timedelta(hours=26)

    def ca(*args: str, at: datetime = t0) -> str:
        """A command at time `at`, through the injected clock (not --now)."""
        return run("ca", *args, "--state", str(state), clock=at)

    out = ca("init", "--mesh", str(mesh), "--write")
    assert "+    issuer: root-1" in out and f"wrote {mesh}" in out
    text = mesh.read_text()
    assert "# The mesh settings (this comment must survive edits)" in text
    assert "# our SPIFFE trust domain" in text
    assert codes(compile_files({"mesh.yaml": text})) == []
    ca("issue", "--namespace", "shop", "--service-account", "web", "--key-out", str(tmp_path / "k"))
    ca("consumer", "add", "proxy", "--kind", "xds")
    old_mesh = mesh.read_text()

    # phase trust-both: the diff adds the new anchor, the issuer stays
    out = ca("rotate", "start", "--mesh", str(mesh))
    assert "+    - name: root-2" in out and "(pass --write to apply" in out
    assert mesh.read_text() == old_mesh  # not written without --write

    refused = meshd_inproc("ca", "rotate", "advance", "--state", str(state), clock=t1)
    assert refused.returncode == 1 and "not yet reporting it: proxy" in refused.stderr
    ca("ack", "proxy", at=t1)
    refused = meshd_inproc("ca", "rotate", "advance", "--state", str(state), clock=t1)
    assert refused.returncode == 1 and "needs the Mesh file" in refused.stderr
    refused = meshd_inproc(
        "ca", "rotate", "advance", "--state", str(state), "--mesh", str(mesh), clock=t1
    )
    assert refused.returncode == 1, refused.stderr
    assert "the Mesh document does not trust the new root root-2" in refused.stderr
    assert "rotate mesh-edit --mesh FILE --write`, commit" in refused.stderr
    ca("rotate", "mesh-edit", "--mesh", str(mesh), "--write")  # apply it, no phase change
    spec = mesh_spec(mesh)
    assert spec.ca is not None and [a.name for a in spec.ca.anchors] == ["root-1", "root-2"]
    assert spec.ca.issuer == "root-1"
    out = ca("rotate", "advance", "--mesh", str(mesh), "--write", at=t1)
    assert "-    issuer: root-1" in out and "+    issuer: root-2" in out
    assert codes(compile_files({"mesh.yaml": mesh.read_text()})) == []

    # the plan refusal: with the root-1 leaf live, dropping root-1 from Git is unsafe
    snapshot = json.loads(ca("status", "--format", "json", at=t1))
    assert snapshot["roots"][0]["liveLeaves"] == 1
    dropped = mesh.read_text().replace("    - name: root-1\n", "    - name: root-1-gone\n")
    spec = mesh_spec(mesh)
    assert check_ca_status(spec, snapshot) == []
    assert spec.ca is not None
    unsafe = spec.model_copy(
        update={
            "ca": spec.ca.model_copy(
                update={"anchors": [a for a in spec.ca.anchors if a.name != "root-1"]}
            )
        }
    )
    [problem] = check_ca_status(unsafe, snapshot)
    assert "1 live leaf certificate still chain to it" in problem
    assert "keep the anchor until 2026-11-26T12:00:00Z" in problem
    assert dropped  # (the text form of the same edit, for the reader)

    # gate 2 is not met while the leaf lives; the status says why
    status = ca("status", "--mesh", str(mesh), at=t1)
    assert "gate to next phase: no live leaf chains to the old root root-1: not yet" in status
    out = ca("rotate", "advance", "--mesh", str(mesh), "--write", at=t2)
    assert "-    - name: root-1" in out
    spec = mesh_spec(mesh)
    assert spec.ca is not None and [a.name for a in spec.ca.anchors] == ["root-2"]
    later = json.loads(ca("status", "--format", "json", at=t2))
    assert check_ca_status(spec, later) == []
    text = mesh.read_text()
    assert "# The mesh settings (this comment must survive edits)" in text
    assert "# our SPIFFE trust domain" in text
    assert codes(compile_files({"mesh.yaml": text})) == []
    status = ca("status", "--mesh", str(mesh), at=t2)
    assert "phase trust-new-only (complete)" in status and "warning" not in status
    finished = meshd_inproc("ca", "rotate", "advance", "--state", str(state), clock=t2)
    assert finished.returncode == 1
    assert "nothing to advance: the last rotation is complete" in finished.stderr


def test_status_warns_at_thresholds_and_exports_gauges(tmp_path: Path) -> None:
    state = tmp_path / "st"
    run("ca", "init", "--state", str(state), "--now", NOW.isoformat())
    soon = NOW + timedelta(days=340)  # intermediate (365 d) within 30 days
    status = meshd_inproc("ca", "status", "--state", str(state), "--now", soon.isoformat())
    assert status.returncode == 0
    assert "warning: intermediate root-1 #1 expires in 25 days" in status.stdout
    assert "root root-1" in status.stdout and "days left" in status.stdout
    late = NOW + timedelta(days=3600)  # root (3650 d) within 90 days; intermediate expired
    status = meshd_inproc("ca", "status", "--state", str(state), "--now", late.isoformat())
    assert status.returncode == 1
    assert "warning: root root-1 expires in 50 days" in status.stdout
    assert "warning: intermediate root-1 #1 EXPIRED" in status.stdout
    gauges = run(
        "ca", "status", "--state", str(state), "--now", NOW.isoformat(), "--format", "prometheus"
    )
    assert "# TYPE meshd_ca_certificate_not_after_timestamp_seconds gauge" in gauges
    assert 'meshd_ca_certificate_not_after_timestamp_seconds{kind="root",root="root-1"' in gauges
    assert "meshd_ca_bundle_sequence 1" in gauges
    assert 'meshd_ca_rotation_phase{phase="none"} 1' in gauges
    assert 'meshd_ca_rotation_phase{phase="trust-both"} 0' in gauges


def test_bundle_outputs(tmp_path: Path) -> None:
    state = tmp_path / "st"
    run("ca", "init", "--state", str(state), "--now", NOW.isoformat())
    pem_bundle = run("ca", "bundle", "--state", str(state), "--now", NOW.isoformat())
    assert pem_bundle.count("-----BEGIN CERTIFICATE-----") == 1
    jwks = json.loads(
        run("ca", "bundle", "--state", str(state), "--now", NOW.isoformat(), "--format", "spiffe")
    )
    assert jwks["spiffe_sequence"] == 1 and jwks["keys"][0]["use"] == "x509-svid"
