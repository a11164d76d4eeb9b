"""Build intents and manifests in memory and lint them together."""

from __future__ import annotations

import textwrap

from compiler.api import Compilation, compile_tree
from compiler.diagnostics import Diagnostic
from compiler.workloads.sources import WorkloadSources
from tests.helpers import NOW, tree


def lint_with(
    intents: dict[str, str], manifests: dict[str, str], *, namespace: str = "default"
) -> Compilation:
    """Compile `intents` (a Mesh added) checked against `manifests` (name -> YAML)."""
    sources = WorkloadSources(
        {name: textwrap.dedent(text).encode() for name, text in sorted(manifests.items())},
        default_namespace=namespace,
    )
    return compile_tree(tree(intents), now=NOW, workloads=sources)


def found(compilation: Compilation, code: str) -> list[Diagnostic]:
    return [d for d in compilation.diagnostics if d.code == code]


def workload_codes(compilation: Compilation) -> list[str]:
    """The codes of the workload rules (MC7xx) that fired, in report order."""
    return [d.code for d in compilation.diagnostics if d.code.startswith("MC7")]


def service(
    name: str,
    namespace: str = "shop",
    *,
    identity: str | None = None,
    selector: str | None = None,
    ports: str = "[{name: grpc, port: 7070, protocol: grpc}]",
    versions: str | None = None,
) -> str:
    lines = [
        "apiVersion: meshc/v1",
        "kind: Service",
        f"metadata: {{name: {name}, namespace: {namespace}}}",
        "spec:",
        f"  identity: {identity or name}",
        f"  ports: {ports}",
    ]
    if selector is not None:
        lines.append(f"  selector: {selector}")
    if versions is not None:
        lines.append(f"  versions: {versions}")
    return "\n".join(lines) + "\n"


def deployment(
    name: str,
    namespace: str | None = "shop",
    *,
    labels: str | None = None,
    account: str | None = "",
    ports: str = "[{name: grpc, containerPort: 7070}]",
) -> str:
    """A Deployment whose pods carry `labels` (default `{app: <name>}`) and run as
    `account` (default: one named like the Deployment; None: no serviceAccountName)."""
    pod_labels = labels or f"{{app: {name}}}"
    meta = f"{{name: {name}, namespace: {namespace}}}" if namespace else f"{{name: {name}}}"
    lines = [
        "apiVersion: apps/v1",
        "kind: Deployment",
        f"metadata: {meta}",
        "spec:",
        f"  selector: {{matchLabels: {pod_labels}}}",
        "  template:",
        f"    metadata: {{labels: {pod_labels}}}",
        "    spec:",
    ]
    if account is not None:
        lines.append(f"      serviceAccountName: {account or name}")
    lines.append(f"      containers: [{{name: main, image: app, ports: {ports}}}]")
    return "\n".join(lines) + "\n"


def kube_service(
    name: str, namespace: str = "shop", *, ports: str = "[{name: grpc, port: 7070}]"
) -> str:
    return (
        "apiVersion: v1\nkind: Service\n"
        f"metadata: {{name: {name}, namespace: {namespace}}}\n"
        f"spec: {{selector: {{app: {name}}}, ports: {ports}}}\n"
    )


def account(name: str, namespace: str = "shop") -> str:
    meta = f"{{name: {name}, namespace: {namespace}}}"
    return f"apiVersion: v1\nkind: ServiceAccount\nmetadata: {meta}\n"


def documents(*texts: str) -> str:
    return "---\n".join(texts)


def app(name: str, namespace: str = "shop", **deployment_options: object) -> str:
    """A well-formed service's manifests: Deployment, Kubernetes Service, ServiceAccount."""
    return documents(
        deployment(name, namespace, **deployment_options),  # type: ignore[arg-type]
        kube_service(name, namespace),
        account(name, namespace),
    )
