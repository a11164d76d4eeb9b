"""`meshc render --out DIR` over a previous render rewrites only the files whose bytes
changed, removes the files of objects that are gone (only files meshc wrote) and says
how many of each; the real binary ends as quickly as it can but still writes it all."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from click.testing import CliRunner

from compiler.artifacts import Artifacts
from compiler.cli import cli
from compiler.cli.render import write_tree
from tests.helpers import REPO, run_cli

NOW = "2026-11-25T12:00:00Z"


def render(policies: Path, out: Path, *extra: str) -> str:
    result = CliRunner().invoke(
        cli, ["render", str(policies), "--now", NOW, "--out", str(out), *extra]
    )
    assert result.exit_code == 0, result.stderr
    return result.stderr


def stamps(out: Path) -> dict[str, tuple[int, int, bytes]]:
    """(inode, mtime in ns, bytes) of every file under `out`."""
    return {
        str(p.relative_to(out)): (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }


def test_a_re_render_rewrites_only_changed_files_and_removes_only_its_stale_ones(
    tmp_path: Path,
) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(REPO / "policies", policies)
    out = tmp_path / "rendered"
    first = render(policies, out)
    assert "wrote 20 object(s)" in first and "20 file(s) written, 0 unchanged" in first
    foreign = out / "bookinfo" / "kustomization.yaml"
    foreign.write_text("resources: []\n")
    # an old mtime on every file: any rewrite shows, however coarse the clock
    old = 1_000_000_000_000_000_000
    for path in out.rglob("*.yaml"):
        os.utime(path, ns=(old, old))
    before = stamps(out)

    again = render(policies, out)
    assert "0 file(s) written, 20 unchanged, 0 stale removed" in again
    assert stamps(out) == before, "an unchanged render touches no file"

    reviews = policies / "reviews.yaml"
    text = reviews.read_text()
    assert text.count('paths: ["/reviews/*"]') == 1
    reviews.write_text(text.replace('paths: ["/reviews/*"]', 'paths: ["/reviews/v2/*"]'))
    changed = render(policies, out)
    after = stamps(out)
    rewritten = sorted(name for name in before if after.get(name) != before[name])
    assert rewritten == ["bookinfo/authorizationpolicy.security.reviews-allow.yaml"], rewritten
    assert "1 file(s) written, 19 unchanged, 0 stale removed" in changed
    assert "/reviews/v2/*" in after[rewritten[0]][2].decode()

    # an object that is gone loses its file; a file meshc did not write stays
    gone = out / "bookinfo" / "sidecar.networking.gone.yaml"
    gone.write_bytes(before["bookinfo/sidecar.networking.reviews.yaml"][2])
    pruned = render(policies, out)
    assert "0 file(s) written, 20 unchanged, 1 stale removed" in pruned
    assert not gone.exists() and foreign.exists()
    assert stamps(out) == after


def test_write_tree_rewrites_a_file_whose_bytes_differ_even_at_the_same_size(
    tmp_path: Path,
) -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "a", "namespace": "ns"},
        "data": {"k": "aaaa"},
    }
    artifacts = Artifacts.of_kubernetes([obj])
    first = write_tree(artifacts, tmp_path, fmt="yaml")
    assert (first.written, first.unchanged, first.removed) == (1, 0, 0)
    file = tmp_path / "ns" / "configmap.core.a.yaml"
    file.write_bytes(file.read_bytes().replace(b"aaaa", b"bbbb"))
    second = write_tree(artifacts, tmp_path, fmt="yaml")
    assert (second.written, second.unchanged) == (1, 0)
    assert b"k: aaaa" in file.read_bytes()
    third = write_tree(artifacts, tmp_path, fmt="json")
    assert (third.written, third.removed) == (1, 0), "the YAML file is not meshc-labelled"
    assert (tmp_path / "ns" / "configmap.core.a.json").is_file()


def test_the_binary_writes_every_file_before_it_exits(tmp_path: Path) -> None:
    """The console entry point ends without tearing the compiled tree down: every file
    and the summary line must be out by then."""
    out = tmp_path / "out"
    result = run_cli("meshc", "render", str(REPO / "policies"), "--now", NOW, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "wrote 20 object(s)" in result.stderr and "20 file(s) written" in result.stderr
    files = sorted(out.rglob("*.yaml"))
    assert len(files) == 20 and all(f.read_bytes().endswith(b"\n") for f in files)
    streamed = run_cli("meshc", "render", str(REPO / "policies"), "--now", NOW)
    assert streamed.returncode == 0, streamed.stderr
    documents = streamed.stdout.split("---\n")
    assert documents[0] == "" and sorted(documents[1:]) == sorted(f.read_text() for f in files)
