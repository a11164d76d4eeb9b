"""Hostile input to `meshc render` (real processes): a bad --out, state file or tree gives
exit 2 (bad flag or file) or 1 (the tree does not compile, findings located), never a
traceback, and nothing is written under --out when render refuses."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.helpers import REPO, run_cli

NOW = "2026-11-25T12:00:00Z"


@pytest.fixture()
def policies(tmp_path: Path) -> Path:
    root = tmp_path / "policies"
    shutil.copytree(REPO / "policies", root)
    return root


def refused(result: object, *needles: str, code: int = 2) -> None:
    assert getattr(result, "returncode") == code, getattr(result, "stderr")  # noqa: B009
    stderr = str(getattr(result, "stderr"))  # noqa: B009
    assert "Traceback" not in stderr and "internal error" not in stderr
    for needle in needles:
        assert needle in stderr, (needle, stderr)


def test_out_inside_the_policy_root_is_refused(policies: Path) -> None:
    before = sorted(p.name for p in policies.iterdir())
    for out in (policies / "rendered", policies):
        result = run_cli("meshc", "render", str(policies), "--now", NOW, "--out", str(out))
        refused(result, f"{out}: inside the policy root", "choose a directory outside it")
    assert sorted(p.name for p in policies.iterdir()) == before
    # a dot-directory or an excluded one is never read back: allowed
    (policies / "meshc.yaml").write_text("exclude: [rendered/]\n")
    for out in (policies / ".rendered", policies / "rendered"):
        ok = run_cli("meshc", "render", str(policies), "--now", NOW, "--out", str(out))
        assert ok.returncode == 0, ok.stderr
        assert any(out.rglob("*.yaml"))


def test_out_that_is_a_file_or_unwritable(policies: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory\n")
    as_file = run_cli("meshc", "render", str(policies), "--now", NOW, "--out", str(blocker))
    refused(as_file, "--out", "is a file")
    under_file = run_cli(
        "meshc", "render", str(policies), "--now", NOW, "--out", str(blocker / "sub")
    )
    refused(under_file, f"cannot write under {blocker / 'sub'}: Not a directory")
    assert blocker.read_text() == "not a directory\n"
    if os.geteuid() == 0:
        print("skipped the read-only --out part: running as root, permission checks do not apply")
        return
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    result = run_cli("meshc", "render", str(policies), "--now", NOW, "--out", str(locked / "x"))
    refused(result, "Permission denied", "choose a writable directory")


def test_malformed_tree_exits_1_with_located_findings_and_writes_nothing(
    policies: Path, tmp_path: Path
) -> None:
    (policies / "broken.yaml").write_text("kind: [\n")
    (policies / "nul.yaml").write_bytes(b"kind: Service\x00\n")
    out = tmp_path / "out"
    result = run_cli("meshc", "render", str(policies), "--now", NOW, "--out", str(out))
    refused(result, "broken.yaml:2:1: error[MC101]", "nul.yaml:1:", code=1)
    assert "does not compile" in result.stderr
    assert not out.exists()
    to_stdout = run_cli("meshc", "render", str(policies), "--now", NOW)
    refused(to_stdout, "broken.yaml:2:1", code=1)
    assert to_stdout.stdout == ""


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (None, "cannot read: No such file or directory"),
        ("[1, 2]", "expected a mapping of '<namespace>/<rollout>: <step index>'"),
        ("{bookinfo/reviews: [", "YAML syntax error"),
        ("x" * (1024 * 1024 + 1), "larger than 1048576 bytes"),
    ],
)
def test_bad_rollout_state(
    policies: Path, tmp_path: Path, content: str | None, needle: str
) -> None:
    state = tmp_path / "state.yaml"
    if content is not None:
        state.write_text(content)
    result = run_cli("meshc", "render", str(policies), "--now", NOW, "--rollout-state", str(state))
    refused(result, "--rollout-state", needle)
    assert result.stdout == ""


def test_non_utf8_file_name_renders_json_without_crashing(policies: Path, tmp_path: Path) -> None:
    service = (policies / "details.yaml").read_bytes().split(b"---")[0]
    assert b"name: details" in service
    odd = os.path.join(os.fsencode(policies), b"odd\xff.yaml")
    with open(odd, "wb") as handle:
        handle.write(service.replace(b"name: details", b"name: oddity"))
    result = run_cli("meshc", "render", str(policies), "--now", NOW, "--format", "json")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "odd\\\\xff.yaml#Service/bookinfo/oddity" in result.stdout  # escaped by the loader
