"""A caller-only service (no ports) in a plan: its calls are access like any other, but it
is no server — no allowed edge into it and no traffic of its own, even under a default
allow that opens every service with ports."""

from __future__ import annotations

from compiler.plan.report import plan_document
from tests.plan.test_meaning import BOOKINFO, plan_of

LOADGEN = """\
apiVersion: meshc/v1
kind: Service
metadata: {name: loadgen, namespace: bookinfo}
spec: {calls: [details]}
"""


def test_adding_a_caller_only_service_shows_its_calls_and_nothing_into_it() -> None:
    base = dict(BOOKINFO)
    base["mesh.yaml"] = BOOKINFO["mesh.yaml"].replace("defaultAction: deny", "defaultAction: allow")
    head = {**base, "loadgen.yaml": LOADGEN}
    head["details.yaml"] = base["details.yaml"].replace(
        "{service: productpage}", "{service: productpage}, {service: loadgen}"
    )
    plan = plan_of(base, head)
    meaning = plan_document(plan)["meaning"]
    assert [e["text"] for e in meaning["allowed"]["added"]] == ["loadgen → details GET /details/*"]
    assert [e["text"] for e in meaning["effective"]["added"]] == [
        "loadgen → details GET /details/*"
    ]
    assert meaning["traffic"] == []
    kinds = sorted(r["kind"] for r in plan_document(plan)["resources"] if "loadgen" in r["id"])
    assert kinds == ["Sidecar"]  # no DestinationRule: it has no host
