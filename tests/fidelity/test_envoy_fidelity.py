"""Fidelity (a) = (b) = (c): the model, Istio's semantics and real Envoy agree on traffic.

For bookinfo (`policies/`) and the rich fixture, `meshd up` runs the mesh on real Envoys
(real mTLS, certificates from the run's CA). Every question is answered three ways:

- (a) the effective model: a call the caller does not declare has no route; a declared
  one is answered when the server's access shape allows it, else refused with 403;
- (b) the Istio oracle over the rendered AuthorizationPolicies (for the RBAC part);
- (c) real traffic: each (caller service, callee, method, path, header) goes through the
  caller's sidecar as its application would send it; and each identity that is no
  running service (the ingress gateway, identities of another trust domain, a stranger in
  each namespace) knocks on every callee's inbound listener with a certificate for it.

A disagreement names all three answers.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import pytest

from compiler.api import Compilation, compile_tree, load_tree
from compiler.lower import lower
from compiler.model.mesh import ServiceKey, ServiceView
from compiler.plan.requests import AccessShape
from tests.e2e.mesh import LocalMesh, local_mesh
from tests.fidelity.probes import (
    Caller,
    Doc,
    Question,
    authorization_policies,
    callers,
    header_probes,
    istio_allows,
    model_allows,
    model_shapes,
    named_methods,
    path_probes,
)
from tests.helpers import NOW, REPO

T = TypeVar("T")
PER_PAIR = 40
"""Requests per (caller service, callee) through the caller's sidecar."""
PER_OUTSIDER = 16
"""Requests per (outside identity, callee) straight to the callee's inbound listener."""
Headers = tuple[tuple[str, str], ...]
MESHES = {
    "bookinfo": REPO / "policies",
    "rich": REPO / "tests" / "lower" / "fixtures" / "rich",
}


class Fidelity:
    """The compiled side of one mesh: the model's shapes and the rendered policies."""

    def __init__(self, compilation: Compilation) -> None:
        self.model = compilation.model
        self.shapes: dict[ServiceKey, AccessShape] = model_shapes(compilation)
        self.policies: list[Doc] = authorization_policies([o for _, o in lower(compilation)])
        self.callers = callers(compilation, self.policies)
        self.root = self.model.settings.root_namespace

    def servers(self) -> Iterator[ServiceView]:
        for key in sorted(self.shapes):
            yield self.model.services[key]

    def http_ports(self, view: ServiceView) -> list[tuple[int, int]]:
        """(service port, container port) of each HTTP port."""
        return [
            (int(p.port), int(p.container_port)) for p in view.spec.ports if p.protocol != "tcp"
        ]

    def speaks_h1(self, view: ServiceView, port: int) -> bool:
        """Whether the demo backend can answer on this service port (HTTP/1.1 only)."""
        return any(int(p.port) == port and p.protocol == "http" for p in view.spec.ports)

    def probes(
        self, view: ServiceView
    ) -> tuple[list[str], list[str], list[tuple[tuple[str, str], ...]]]:
        mine = [
            p
            for p in self.policies
            if p["metadata"]["namespace"] in (view.key.namespace, self.root)
        ]
        wire = [path for path in path_probes(mine) if path.isascii() and " " not in path]
        return named_methods(mine), wire, header_probes(mine)

    def model_says(self, question: Question) -> bool:
        return model_allows(self.shapes[question.callee], question)

    def istio_says(self, question: Question, view: ServiceView) -> bool:
        versions = sorted(view.spec.versions or {})
        labels = view.version_labels(versions[0]) if versions else dict(view.selector)
        return istio_allows(self.policies, question, labels=labels, root_namespace=self.root)


@pytest.fixture(scope="module", params=sorted(MESHES))
def mesh(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Fidelity, LocalMesh]]:
    path: Path = MESHES[request.param]
    compilation = compile_tree(load_tree(path), now=NOW)
    assert compilation.ok
    with local_mesh(path, tmp_path_factory.mktemp(request.param)) as running:
        yield Fidelity(compilation), running


def _verdict(allowed: bool) -> str:
    return "answered" if allowed else "403"


def _disagreement(question: Question, a: str, b: str, c: str) -> str:
    return f"{question}: model {a}, Istio {b}, Envoy {c}"


def test_every_call_through_the_callers_sidecar(mesh: tuple[Fidelity, LocalMesh]) -> None:
    fidelity, running = mesh
    problems: list[str] = []
    asked = 0
    clients = [v for v in fidelity.model.services.values() if running.nodes_of(str(v.key))]
    for client, server in itertools.product(clients, list(fidelity.servers())):
        caller = Caller(client.spiffe_id, str(client.key))
        methods, paths, headers = fidelity.probes(server)
        cells = itertools.product(fidelity.http_ports(server), methods, paths, headers)
        for (port, container), method, path, sent in _sample(cells, PER_PAIR, caller, server):
            question = Question(caller, server.key, method, path, container, sent)
            declared = server.key in client.calls
            a = _verdict(fidelity.model_says(question)) if declared else "no route"
            b = _verdict(fidelity.istio_says(question, server)) if declared else "no route"
            (result,) = running.call(
                str(client.key),
                str(server.key),
                path,
                method=method,
                headers=[f"{name}: {value}" for name, value in sent],
                port=port,
            )
            c = _observed(
                result.kind, result.status, result.detail, fidelity.speaks_h1(server, port)
            )
            asked += 1
            if not a == b == c:
                problems.append(_disagreement(question, a, b, c))
    assert asked, "no question was asked"
    assert not problems, "\n".join(problems[:20])


def _observed(kind: str, status: int | None, detail: str, h1: bool) -> str:
    """What the caller saw. A 403 is RBAC's whatever `meshd call` made of it (a HEAD
    answer has no body to recognise). Past RBAC, an HTTP/2 or gRPC port's demo backend
    (HTTP/1.1 only) cannot answer: any status but 403 then means RBAC let it through."""
    if kind == "denied" and detail.startswith("no route"):
        return "no route"
    if status == 403:
        return "403"
    if status is not None and (200 <= status < 300 or not h1):
        return "answered"
    return f"{kind} {status} {detail}"


def _observed_direct(status: int, h1: bool) -> str:
    if status == 403:
        return "403"
    return "answered" if 200 <= status < 300 or not h1 else str(status)


def _sample(cells: Iterable[T], count: int, caller: Caller, server: ServiceView) -> list[T]:
    """At most `count` of the cells, the same ones on every run: real requests cost
    milliseconds each, and (a) = (b) was already checked on every cell without Envoy."""
    chosen = list(cells)
    if len(chosen) <= count:
        return chosen
    return random.Random(f"{caller.spiffe} {server.key}").sample(chosen, count)


def _outsiders(fidelity: Fidelity, running: LocalMesh) -> Sequence[Caller]:
    """The identities no running service holds: the gateway, foreign trust domains,
    strangers."""
    running_ids = {
        v.spiffe_id for v in fidelity.model.services.values() if running.nodes_of(str(v.key))
    }
    return [c for c in fidelity.callers if c.spiffe not in running_ids]


def test_every_other_identity_at_every_inbound_listener(
    mesh: tuple[Fidelity, LocalMesh],
) -> None:
    fidelity, running = mesh
    problems: list[str] = []
    outsiders = _outsiders(fidelity, running)
    assert outsiders
    for caller in outsiders:
        credential = running.identity(caller.spiffe)
        for server in fidelity.servers():
            node = running.nodes_of(str(server.key))[0]
            methods, paths, headers = fidelity.probes(server)
            cells = itertools.product(fidelity.http_ports(server), methods, paths, headers)
            for (port, container), method, path, sent in _sample(
                cells, PER_OUTSIDER, caller, server
            ):
                question = Question(caller, server.key, method, path, container, sent)
                a = _verdict(fidelity.model_says(question))
                b = _verdict(fidelity.istio_says(question, server))
                status = running.direct(
                    node, port, credential, method=method, path=path, headers=dict(sent)
                )
                c = _observed_direct(status, fidelity.speaks_h1(server, port))
                if not a == b == c:
                    problems.append(_disagreement(question, a, b, c))
    assert not problems, "\n".join(problems[:20])
