"""The live preflight against the stand-in: the cluster's CRDs, its workloads and foreign
objects refuse a revision before anything is applied, with findings at the intent line."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from compiler.diagnostics import Severity
from reconciler.cli import main as meshd
from reconciler.kube.preflight import PreflightRefused
from reconciler.kube.target import CheckedTarget
from reconciler.loop import PassOutcome, Reconciler
from reconciler.source.git import GitRepositorySource
from reconciler.state import StateStore
from reconciler.targets.kubernetes import KubernetesTarget
from tests.kube.conftest import Kube
from tests.kube.seeding import BOOKINFO, ROLLOUT_NAME_LINE, crd, seed_cluster
from tests.kube.support import NOW
from tests.run.support import commit_file, policy_repo


class Loop:
    def __init__(self, tmp: Path, kube: Kube, **checked: Any) -> None:
        self.repo = tmp / "repo"
        if not self.repo.exists():
            policy_repo(self.repo)
        state = tmp / "state"
        self.store = StateStore(state)
        self.inner = KubernetesTarget(kube.cluster, inventory=self.store.load().inventory)
        self.target = CheckedTarget(self.inner, **checked)
        source = GitRepositorySource(
            str(self.repo), mirror_dir=state / "mirror.git", path="policies"
        )
        self.loop = Reconciler(
            source, self.target, store=self.store, clock=lambda: NOW, confirm_timeout=0.1
        )

    def run(self) -> PassOutcome:
        return asyncio.run(self.loop.reconcile())


@pytest.fixture
def cluster(standin_kube: Kube) -> Iterator[Kube]:
    assert standin_kube.stand_in is not None
    yield standin_kube


def refused(outcome: PassOutcome) -> str:
    assert outcome.reason == "PushFailed" and not outcome.applied, outcome
    text = "\n".join(outcome.findings)
    assert text.startswith("preflight: "), text
    return text


def test_a_cluster_that_runs_the_intents_passes_and_is_applied(
    tmp_path: Path, cluster: Kube
) -> None:
    assert cluster.stand_in is not None
    seed_cluster(cluster.stand_in)
    loop = Loop(tmp_path, cluster)
    outcome = loop.run()
    assert outcome.ok and outcome.reason == "Applied", outcome
    assert set(cluster.owned()) == set(loop.inner.render(loop.loop.last_good).objects)  # type: ignore[arg-type]


def test_a_version_with_no_pods_stops_the_apply_at_the_rollout_line(
    tmp_path: Path, cluster: Kube
) -> None:
    assert cluster.stand_in is not None
    seed_cluster(cluster.stand_in, skip=("reviews-v3",))
    loop = Loop(tmp_path, cluster)
    outcome = loop.run()
    text = refused(outcome)
    assert outcome.findings[1].startswith("reviews.yaml:")  # one finding, one entry
    line = next(
        n
        for n, t in enumerate(
            (BOOKINFO.parents[3] / "policies" / "reviews.yaml").read_text().splitlines(), 1
        )
        if "split:" in t
    )
    assert f"reviews.yaml:{line}:" in text and "error MC704" in text, text
    assert "version 'v3'" in text
    assert "= note: cluster:Deployment/bookinfo/reviews-v1: " in text  # the live place
    assert cluster.owned() == {}, "something was applied from a refused revision"
    assert "meshd_preflight_refused_total 1" in loop.target.metrics_text()
    ready = loop.store.load().condition("Ready")
    assert ready is not None and ready.status is False


def test_a_scaled_down_version_has_no_running_pods(tmp_path: Path, cluster: Kube) -> None:
    assert cluster.stand_in is not None
    seed_cluster(cluster.stand_in, skip=("reviews-v3",))
    docs = list(YAML(typ="safe").load_all((BOOKINFO / "reviews.yaml").read_text()))
    scaled = copy.deepcopy(next(d for d in docs if d["metadata"]["name"] == "reviews-v3"))
    scaled["spec"]["replicas"] = 0
    cluster.stand_in.seed(scaled)
    assert "error MC704" in refused(Loop(tmp_path, cluster).run())


def test_the_last_good_revision_stays_when_a_later_one_fails_preflight(
    tmp_path: Path, cluster: Kube
) -> None:
    assert cluster.stand_in is not None
    seed_cluster(cluster.stand_in)
    loop = Loop(tmp_path, cluster)
    assert loop.run().ok
    before = cluster.owned()
    policy = (loop.repo / "policies" / "ratings.yaml").read_text()
    commit_file(loop.repo, "ratings.yaml", policy.replace("bookinfo-ratings", "nobody"), "B")
    text = refused(loop.run())
    assert "ratings.yaml:" in text and ("MC706" in text or "MC705" in text), text
    assert cluster.owned() == before


def test_a_foreign_virtual_service_for_the_same_host_is_a_conflict(
    tmp_path: Path, cluster: Kube
) -> None:
    assert cluster.stand_in is not None
    seed_cluster(cluster.stand_in)
    cluster.stand_in.seed(
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "reviews-by-hand", "namespace": "bookinfo"},
            "spec": {
                "hosts": ["reviews"],
                "http": [{"route": [{"destination": {"host": "reviews"}}]}],
            },
        }
    )
    text = refused(Loop(tmp_path, cluster).run())
    assert "error MC802 VirtualService bookinfo/reviews-by-hand (not meshc's)" in text, text
    assert "= note: cluster:VirtualService/bookinfo/reviews-by-hand: routes" in text
    rollout = ROLLOUT_NAME_LINE  # the Rollout emits the VirtualService: its line
    assert f"reviews.yaml:{rollout}:9: error MC802" in text
    assert "reviews.bookinfo.svc.cluster.local" in text
    assert cluster.owned() == {}


def test_a_same_named_object_without_meshc_ownership_is_a_conflict(
    tmp_path: Path, cluster: Kube
) -> None:
    assert cluster.stand_in is not None
    seed_cluster(cluster.stand_in)
    loop = Loop(tmp_path, cluster)
    first = loop.target.render(_compiled(loop))
    policy = next(
        obj
        for obj in first.desired.objects.values()
        if obj["kind"] == "AuthorizationPolicy" and obj["metadata"]["name"].startswith("ratings")
    )
    foreign = copy.deepcopy(policy)
    foreign["metadata"]["labels"] = {"team": "ratings"}
    cluster.stand_in.seed(foreign, manager="kubectl-create")
    text = refused(loop.run())
    name = policy["metadata"]["name"]
    assert f"error MC801 AuthorizationPolicy bookinfo/{name} already exists" in text, text
    assert "written by kubectl-create" in text and "ratings.yaml:" in text
    live = cluster.read("security.istio.io/v1", "AuthorizationPolicy", "bookinfo", name)
    assert live is not None and live["metadata"]["labels"] == {"team": "ratings"}


def test_crds_without_v1_are_version_skew_caught_before_apply(
    tmp_path: Path, cluster: Kube
) -> None:
    assert cluster.stand_in is not None
    old = crd("networking.istio.io", "VirtualService", "virtualservices", versions=("v1beta1",))
    seed_cluster(cluster.stand_in, crds={"VirtualService": old})
    text = refused(Loop(tmp_path, cluster).run())
    assert "error MC190" in text and "networking.istio.io/v1 is not served" in text, text
    assert "served: v1beta1" in text
    assert cluster.owned() == {}


def test_a_crd_without_a_field_meshc_emits_is_caught(tmp_path: Path, cluster: Kube) -> None:
    assert cluster.stand_in is not None
    loop = Loop(tmp_path, cluster)
    rendered = loop.target.render(_compiled(loop)).desired.objects.values()
    spec = next(
        o for o in rendered if o["kind"] == "DestinationRule" and "trafficPolicy" in o["spec"]
    )["spec"]
    fields = {
        k: {"x-kubernetes-preserve-unknown-fields": True} for k in spec if k != "trafficPolicy"
    }
    narrow = crd(
        "networking.istio.io",
        "DestinationRule",
        "destinationrules",
        spec={"type": "object", "properties": fields},
    )
    seed_cluster(cluster.stand_in, crds={"DestinationRule": narrow})
    text = refused(loop.run())
    assert "error MC190" in text and "unknown field 'trafficPolicy'" in text, text
    assert "ratings.yaml:" in text  # the Resilience that asked for it


def test_no_crd_at_all_is_reported(tmp_path: Path, cluster: Kube) -> None:
    assert cluster.stand_in is not None
    for namespace in ("bookinfo", "istio-system"):
        cluster.stand_in.seed(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "default", "namespace": namespace},
            }
        )
    text = refused(Loop(tmp_path, cluster).run())
    assert "error MC800 the cluster serves no CustomResourceDefinition for VirtualService" in text


def test_warnings_refuse_only_with_fail_on_warning(tmp_path: Path, cluster: Kube) -> None:
    assert cluster.stand_in is not None
    seed_cluster(cluster.stand_in, skip=("bookinfo-details",))  # MC705, a warning
    strict = Loop(tmp_path / "strict", cluster, fail_on=Severity.WARNING)
    assert "warning MC705" in refused(strict.run())
    lenient = Loop(tmp_path / "lenient", cluster)
    assert lenient.run().ok


def test_the_refusal_reads_like_compile_findings(tmp_path: Path, cluster: Kube) -> None:
    assert cluster.stand_in is not None
    seed_cluster(cluster.stand_in, skip=("reviews-v3",))
    loop = Loop(tmp_path, cluster)
    with pytest.raises(PreflightRefused) as caught:
        asyncio.run(loop.target.push(loop.target.render(_compiled(loop)), revision="f" * 40))
    assert caught.value.code == 1
    header, *findings = caught.value.findings
    assert header.startswith("preflight: 1 finding against the cluster refuse revision ffff")
    assert findings and all(line.split(":")[0].endswith(".yaml") for line in findings)


def _compiled(loop: Loop) -> Any:
    from compiler.api import compile_tree

    revision = loop.loop.source.read()
    return compile_tree(revision.tree, now=NOW)


def _live(kind: str, name: str, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "bookinfo"}
    owner = extra.pop("owner", None)
    if owner:
        meta["ownerReferences"] = [{"kind": owner[0], "name": owner[1], "controller": True}]
    return {"apiVersion": "v1", "kind": kind, "metadata": meta, **extra}


def test_what_counts_as_running() -> None:
    from reconciler.kube.live_workloads import running

    listed = {
        "Deployment": [
            _live("Deployment", "web", spec={"replicas": 2}),
            _live("Deployment", "idle", spec={"replicas": 0}),
        ],
        "ReplicaSet": [
            _live("ReplicaSet", "web-1", spec={"replicas": 2}, owner=("Deployment", "web")),
            _live("ReplicaSet", "bare", spec={}),
        ],
        "Pod": [
            _live("Pod", "web-1-a", owner=("ReplicaSet", "web-1")),
            _live("Pod", "job-x", owner=("Job", "job"), status={"phase": "Running"}),
            _live("Pod", "done", status={"phase": "Succeeded"}),
            _live("Pod", "going", status={"phase": "Running"}),
        ],
        "DaemonSet": [_live("DaemonSet", "agent", spec={})],
    }
    listed["Pod"][3]["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    names = sorted(obj["metadata"]["name"] for obj in running(listed))
    assert names == ["agent", "bare", "job-x", "web"]


def test_meshd_run_once_reports_the_refusal_and_exits_1(tmp_path: Path, cluster: Kube) -> None:
    assert cluster.stand_in is not None
    seed_cluster(cluster.stand_in, skip=("reviews-v3",))
    repo = policy_repo(tmp_path / "repo")
    args = ["run", "--repo", str(repo), "--path", "policies", "--target", "kubernetes"]
    args += ["--kubeconfig", str(cluster.kubeconfig), "--state", str(tmp_path / "s"), "--once"]
    result = CliRunner().invoke(meshd, args)
    assert result.exit_code == 1, result.output
    assert "PushFailed" in result.output and "error MC704" in result.output
    assert "Traceback" not in result.output and cluster.owned() == {}
    skipped = CliRunner().invoke(meshd, [*args, "--no-preflight"])
    assert skipped.exit_code == 0 and "Applied" in skipped.output, skipped.output


def test_a_read_the_cluster_refuses_fails_the_pass_with_a_remedy(
    tmp_path: Path, cluster: Kube
) -> None:
    assert cluster.stand_in is not None
    seed_cluster(cluster.stand_in)
    cluster.stand_in.fail(method="GET", plural="customresourcedefinitions", status=403, times=99)
    outcome = Loop(tmp_path, cluster).run()
    assert outcome.reason == "PushFailed", outcome
    assert "preflight: " in outcome.findings[0] and "refused a read (403" in outcome.findings[0]
    assert "rbac-cluster.yaml" in outcome.findings[0] and cluster.owned() == {}
