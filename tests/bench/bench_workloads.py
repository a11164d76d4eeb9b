"""How much `--workloads` adds to a lint: a generated mesh with one manifest per service.

Prints figures, asserts nothing: `python -m tests.bench.bench_workloads [SERVICES]`.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from compiler.api import Session, compile_tree
from compiler.load.discover import PolicyTree
from compiler.workloads.sources import WorkloadSources
from tests.helpers import NOW
from tests.workloads.helpers import app, service

MESH = b"apiVersion: meshc/v1\nkind: Mesh\nmetadata: {name: bench}\n"


@dataclass(frozen=True, slots=True)
class Figures:
    services: int
    intents_only: float
    with_manifests: float
    one_manifest_edited: float
    findings: int


def run(services: int) -> Figures:
    """Cold compiles without and with the manifests, then a re-compile in the same session
    after one manifest changes (the canary's pods lose their labels)."""
    files = {
        f"s{i}.yaml": service(f"svc{i}", namespace=f"ns{i % 10}").encode() for i in range(services)
    }
    files["mesh.yaml"] = MESH
    manifests = {
        f"m{i}.yaml": app(f"svc{i}", namespace=f"ns{i % 10}").encode() for i in range(services)
    }
    started = time.perf_counter()
    compile_tree(PolicyTree(files=dict(files)), now=NOW)
    intents_only = time.perf_counter() - started
    session = Session()
    started = time.perf_counter()
    compile_tree(
        PolicyTree(files=dict(files)),
        now=NOW,
        session=session,
        workloads=WorkloadSources(manifests),
    )
    with_manifests = time.perf_counter() - started
    manifests["m0.yaml"] = app("svc0", namespace="ns0", labels="{app: other}").encode()
    started = time.perf_counter()
    edited = compile_tree(
        PolicyTree(files=dict(files)),
        now=NOW,
        session=session,
        workloads=WorkloadSources(manifests),
    )
    one_edit = time.perf_counter() - started
    found = sum(1 for d in edited.diagnostics if d.code.startswith("MC7"))
    return Figures(services, intents_only, with_manifests, one_edit, found)


def report(figures: Figures) -> str:
    return (
        f"{figures.services} services, one manifest each (Deployment, Service, ServiceAccount)\n"
        f"  intents only, cold:        {figures.intents_only:.2f} s\n"
        f"  with --workloads, cold:    {figures.with_manifests:.2f} s\n"
        f"  one manifest edited:       {figures.one_manifest_edited:.2f} s "
        f"({figures.findings} workload finding(s))\n"
    )


if __name__ == "__main__":
    sys.stdout.write(report(run(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)))
