"""deploy/: the image (checked statically: there is no Docker engine here) and the
Kubernetes manifests — strict schema validation, RBAC derived from what the Istio backend
emits and what the preflight reads, the Deployment's safety settings, and the policy
repository that deploys meshd linting clean against those manifests."""

from __future__ import annotations

import ast
import importlib
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
from ruamel.yaml import YAML

from compiler.plan.mask import secret_key
from reconciler.kube.kinds import EMITTED_KINDS
from reconciler.kube.live_workloads import LIVE_KINDS
from reconciler.run.command import run_command
from tests.helpers import REPO, run_cli

DEPLOY = REPO / "deploy"
BASE = DEPLOY / "kubernetes"
ISTIO_BACKEND = REPO / "compiler" / "lower" / "istio"
K8S_VERSION = "1.30"
WRITE_VERBS = {"create", "patch", "update", "delete", "deletecollection"}
READ_VERBS = {"get", "list", "watch"}


# -- the image ---------------------------------------------------------------------------


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_the_image_runs_as_an_unprivileged_user() -> None:
    steps = instructions(DEPLOY / "Dockerfile")
    final = steps[max(i for i, (word, _) in enumerate(steps) if word == "FROM") :]
    users = [rest for word, rest in final if word == "USER"]
    assert users, "the final stage sets no USER: it would run as root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0, "a numeric non-root uid (runAsNonRoot checks it)"
    assert gid.isdigit() and int(gid) != 0
    assert [rest for word, rest in final if word == "ENTRYPOINT"] == ['["meshd"]']
    for _, image in (s for s in steps if s[0] == "FROM"):
        name = image.split()[0]
        assert ":" in name and not name.endswith(":latest"), f"{name}: pin a tag"


def test_the_image_bakes_no_secret_and_writes_only_to_mounted_volumes() -> None:
    steps = instructions(DEPLOY / "Dockerfile")
    assert not [rest for word, rest in steps if word == "ADD"], "ADD fetches URLs: use COPY"
    env: dict[str, str] = {}
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    for word, rest in steps:
        if word in ("ENV", "ARG"):
            for name, _, value in (pair.partition("=") for pair in rest.split()):
                assert not secret_key(name), f"{word} {name}: a secret baked into the image"
                env[name] = value
        if word == "COPY":
            sources = [s for s in rest.split()[:-1] if not s.startswith("--")]
            assert not any(re.search(r"\.(pem|key|p12)$|kubeconfig|\.env", s) for s in sources)
            if "--from=" not in rest:  # from the context: it exists and is let in
                for source in sources:
                    assert (REPO / source).exists(), source
                    assert f"!{source}" in ignored or f"!{source}/**" in ignored, source
    assert ignored[0] == "*" or ignored[: ignored.index("*")] == [
        line for line in ignored[: ignored.index("*")] if line.startswith("#")
    ], "the context starts empty (`*` first): only named paths go in"
    assert {"**/*.pem", "**/*.key"} <= set(ignored)
    mounts = {m["mountPath"] for m in container()["volumeMounts"]}
    assert env["HOME"] in mounts and env["XDG_STATE_HOME"] in mounts
    state = next(a for a in container()["args"] if a.startswith("--state="))
    assert any(state.split("=", 1)[1].startswith(mount) for mount in mounts)


# -- the manifests -----------------------------------------------------------------------


@cache
def manifests() -> tuple[dict[str, Any], ...]:
    """The base's objects, read from the files its kustomization lists."""
    kustomization = YAML(typ="safe").load((BASE / "kustomization.yaml").read_text())
    docs: list[dict[str, Any]] = []
    for name in kustomization["resources"]:
        docs.extend(d for d in YAML(typ="safe").load_all((BASE / name).read_text()) if d)
    return tuple(docs)


def objects(kind: str) -> list[dict[str, Any]]:
    return [doc for doc in manifests() if doc["kind"] == kind]


def container() -> dict[str, Any]:
    (deployment,) = objects("Deployment")
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    found: dict[str, Any] = only
    return found


@pytest.mark.parametrize("index", range(len(manifests())))
def test_each_manifest_validates_strictly(index: int) -> None:
    kubernetes_validate.validate(manifests()[index], K8S_VERSION, strict=True)


def test_kustomize_builds_the_same_objects() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: `kubectl kustomize` not checked")
    built = subprocess.run(
        [kubectl, "kustomize", str(BASE)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    names = {
        (d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"])
        for d in YAML(typ="safe").load_all(built)
        if d
    }
    assert names == {
        (d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) for d in manifests()
    }
    assert ("Role", "istio-system", "meshd-cacerts") in names  # not moved by a namespace:


def test_the_deployment_runs_two_replicas_under_leader_election() -> None:
    (deployment,) = objects("Deployment")
    assert deployment["spec"]["replicas"] == 2
    args = container()["args"]
    assert args[0] == "run" and "--leader-elect" in args and "--target=kubernetes" in args
    known = {opt for param in run_command.params for opt in param.opts + param.secondary_opts}
    for arg in args[1:]:
        assert arg.split("=", 1)[0] in known, f"{arg}: not an option of meshd run"
    probes = {container()[p]["httpGet"]["path"] for p in ("livenessProbe", "readinessProbe")}
    assert probes == {"/healthz", "/readyz"}
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "meshd" and pod["securityContext"]["runAsNonRoot"]
    security = container()["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["runAsNonRoot"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    (service,) = objects("Service")
    assert service["spec"]["selector"].items() <= pod_labels().items()
    port = service["spec"]["ports"][0]["targetPort"]
    assert port in {p["name"] for p in container()["ports"]}
    listen = next(a for a in args if a.startswith("--listen="))
    assert listen.endswith(":" + str(container()["ports"][0]["containerPort"]))


def pod_labels() -> dict[str, str]:
    (deployment,) = objects("Deployment")
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


def test_network_policy_selects_meshd_and_admits_its_port() -> None:
    (policy,) = objects("NetworkPolicy")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels().items()
    admitted = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    assert admitted == {p["containerPort"] for p in container()["ports"]}


# -- RBAC --------------------------------------------------------------------------------


def emitted_by_the_istio_backend() -> set[tuple[str, str]]:
    """(apiVersion, kind) of every `new_object(...)` call in compiler/lower/istio, with
    the apiVersion constants resolved in the module that uses them."""
    found = set()
    for path in sorted(ISTIO_BACKEND.glob("*.py")):
        module = importlib.import_module(f"compiler.lower.istio.{path.stem}")
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "new_object"):
                continue
            given = {k.arg: k.value for k in node.keywords}
            version, kind = given["api_version"], given["kind"]
            assert isinstance(kind, ast.Constant)
            value = version.value if isinstance(version, ast.Constant) else None
            if isinstance(version, ast.Name):
                value = getattr(module, version.id)
            found.add((str(value), str(kind.value)))
    return found


def plural(kind: str) -> str:
    lower = kind.lower()
    if lower.endswith("y") and lower[-2] not in "aeiou":
        return lower[:-1] + "ies"
    return lower + "s"


def grants(kind: str) -> dict[tuple[str, str], set[str]]:
    """(group, resource) → verbs granted by every rule of every `kind` object."""
    out: dict[tuple[str, str], set[str]] = {}
    for role in objects(kind):
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    out.setdefault((group, resource), set()).update(rule["verbs"])
    return out


def group_of(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def test_the_emitted_kinds_list_is_the_backends() -> None:
    derived = emitted_by_the_istio_backend()
    assert len(derived) >= 8
    assert derived == set(EMITTED_KINDS)


def test_the_cluster_role_writes_exactly_the_emitted_kinds() -> None:
    cluster = grants("ClusterRole")
    writable = {key for key, verbs in cluster.items() if verbs & WRITE_VERBS}
    emitted = {(group_of(v), plural(k)) for v, k in emitted_by_the_istio_backend()}
    assert writable - {("", "events")} == emitted
    for key in emitted:
        assert cluster[key] == READ_VERBS | {"create", "patch", "update", "delete"}, key
    assert cluster[("", "events")] == {"create", "patch"}


def test_the_preflight_reads_what_it_needs_and_nothing_more() -> None:
    cluster = grants("ClusterRole")
    needed = {(group_of(v), plural(k)) for v, k in LIVE_KINDS} | {
        ("apiextensions.k8s.io", "customresourcedefinitions")
    }
    for key in needed:
        assert cluster.get(key, set()) >= READ_VERBS, f"the preflight cannot list {key}"
    emitted = {(group_of(v), plural(k)) for v, k in EMITTED_KINDS}
    assert set(cluster) == needed | emitted | {("", "events")}


def test_no_wildcards_and_secrets_only_by_name() -> None:
    for kind in ("ClusterRole", "Role"):
        for role in objects(kind):
            for rule in role["rules"]:
                assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
                if "secrets" in rule["resources"]:
                    assert kind == "Role" and rule["resourceNames"] == ["cacerts"]
                    assert role["metadata"]["namespace"] == "istio-system"
    assert ("", "secrets") not in grants("ClusterRole")
    lease_rules = [
        r for role in objects("Role") for r in role["rules"] if "leases" in r["resources"]
    ]
    named = [r for r in lease_rules if r.get("resourceNames")]
    assert named and all(r["resourceNames"] == ["meshd"] for r in named)
    assert all(set(r["verbs"]) == {"create"} for r in lease_rules if not r.get("resourceNames"))
    lease_arg = next(a for a in container()["args"] if a.startswith("--lease-name="))
    assert lease_arg == "--lease-name=meshd"


def test_every_binding_names_the_service_account() -> None:
    roles = {
        (r["kind"], r["metadata"]["name"]) for k in ("Role", "ClusterRole") for r in objects(k)
    }
    bindings = objects("RoleBinding") + objects("ClusterRoleBinding")
    assert {(b["roleRef"]["kind"], b["roleRef"]["name"]) for b in bindings} == roles
    for binding in bindings:
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "meshd", "namespace": "meshc-system"}
        ]


# -- the policy repository that deploys meshd ---------------------------------------------


def test_the_policy_repository_for_meshd_lints_clean_against_its_manifests() -> None:
    result = run_cli("meshc", "lint", str(DEPLOY / "policies"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 error(s), 0 warning(s), 0 info" in result.stdout
    assert "../kubernetes/deployment.yaml" not in result.stderr  # read, not skipped
    broken = run_cli(
        "meshc", "lint", "--workloads", str(BASE / "service.yaml"), str(DEPLOY / "policies")
    )
    assert broken.returncode == 1 and "MC702" in broken.stdout  # the checks did run
