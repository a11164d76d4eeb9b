"""`meshd diff --target kubernetes`: the plan against the stand-in (server-side dry runs),
with the preflight's findings, and terraform's detailed exit codes."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from reconciler.cli import main as meshd
from tests.kube.conftest import Kube
from tests.kube.seeding import seed_cluster
from tests.run.support import EXTRA_SERVICE, commit_file, policy_repo


def diff(repo: Path, kube: Kube, *extra: str) -> tuple[int, str]:
    args = ["diff", "--repo", str(repo), "--path", "policies", "--target", "kubernetes"]
    result = CliRunner().invoke(meshd, [*args, "--kubeconfig", str(kube.kubeconfig), *extra])
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def apply(repo: Path, tmp: Path, kube: Kube, *extra: str) -> None:
    args = ["run", "--repo", str(repo), "--path", "policies", "--target", "kubernetes"]
    args += ["--kubeconfig", str(kube.kubeconfig), "--state", str(tmp / "state"), "--once"]
    args += extra
    result = CliRunner().invoke(meshd, args)
    assert result.exit_code == 0, result.output


def test_the_plan_against_the_cluster_from_create_to_no_change_to_prune(
    tmp_path: Path, standin_kube: Kube
) -> None:
    assert standin_kube.stand_in is not None
    seed_cluster(standin_kube.stand_in)
    repo = policy_repo(tmp_path / "repo")

    code, out = diff(repo, standin_kube)
    assert code == 1, out
    assert "  + create    networking.istio.io/v1/VirtualService/bookinfo/reviews" in out
    assert " 0 to change, 0 to prune, 0 unchanged; 0 refused" in out
    assert standin_kube.owned() == {}, "a diff wrote to the cluster"

    apply(repo, tmp_path, standin_kube)
    before = standin_kube.versions()
    code, out = diff(repo, standin_kube)
    assert code == 0, out
    assert "0 to create, 0 to change, 0 to prune" in out and "+ create" not in out

    commit_file(repo, "extra.yaml", EXTRA_SERVICE, "extra")  # no pods: applied unchecked
    apply(repo, tmp_path, standin_kube, "--no-preflight")
    before = standin_kube.versions()
    reviews = (repo / "policies" / "reviews.yaml").read_text()
    commit_file(repo, "reviews.yaml", reviews.replace("{v1: 90, v3: 10}", "{v1: 80, v3: 20}"), "B")
    commit_file(repo, "extra.yaml", None, "no extra")
    code, out = diff(repo, standin_kube)
    assert code == 1, out
    assert "  ~ change    networking.istio.io/v1/VirtualService/bookinfo/reviews" in out
    assert "].weight: 90 → 80" in out and "].weight: 10 → 20" in out
    assert "  - prune     networking.istio.io/v1/DestinationRule/bookinfo/extra" in out
    assert "  - prune     networking.istio.io/v1/DestinationRule/bookinfo/reviews" not in out
    assert standin_kube.versions() == before, "a diff wrote to the cluster"


def test_preflight_findings_and_refusals_exit_2(tmp_path: Path, standin_kube: Kube) -> None:
    assert standin_kube.stand_in is not None
    seed_cluster(standin_kube.stand_in, skip=("reviews-v3",))
    repo = policy_repo(tmp_path / "repo")
    code, out = diff(repo, standin_kube)
    assert code == 2, out
    assert "preflight:\n  reviews.yaml:" in out and "error MC704" in out
    assert "  + create    " in out  # the plan is still shown

    broken = commit_file(repo, "mesh.yaml", "kind: Mesh\nspec: [\n", "broken")
    code, out = diff(repo, standin_kube)
    assert code == 2 and f"{broken[:12]}: does not compile" in out, out
    assert "mesh.yaml:" in out


def test_a_plain_folder_of_intents_is_diffed_too(tmp_path: Path, standin_kube: Kube) -> None:
    assert standin_kube.stand_in is not None
    seed_cluster(standin_kube.stand_in)
    repo = policy_repo(tmp_path / "repo")
    folder = tmp_path / "folder"
    (repo / "policies").rename(folder)
    result = CliRunner().invoke(
        meshd,
        [
            "diff",
            "--repo",
            str(folder),
            "--target",
            "kubernetes",
            "--kubeconfig",
            str(standin_kube.kubeconfig),
        ],
    )
    assert result.exit_code == 1 and "meshd diff: the folder against" in result.output


def test_an_unreachable_cluster_is_an_error_not_a_change(tmp_path: Path) -> None:
    repo = policy_repo(tmp_path / "repo")
    config = tmp_path / "kubeconfig"
    config.write_text(
        '{"apiVersion": "v1", "kind": "Config", "current-context": "x",'
        ' "clusters": [{"name": "x", "cluster": {"server": "http://127.0.0.1:9"}}],'
        ' "users": [{"name": "x", "user": {}}],'
        ' "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}]}'
    )
    args = ["diff", "--repo", str(repo), "--path", "policies", "--target", "kubernetes"]
    result = CliRunner().invoke(meshd, [*args, "--kubeconfig", str(config)])
    assert result.exit_code == 2, result.output
    assert "meshd: http://127.0.0.1:9: cannot " in result.output
