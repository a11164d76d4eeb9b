"""New egress is a plan risk: an External newly called, or a new host or port on one a
service calls, is flagged; the meaning diff lists outside destinations gained and lost in
every format."""

from __future__ import annotations

from compiler.plan.markdown import render_markdown
from compiler.plan.report import plan_document
from compiler.plan.text import render_text
from tests.plan.test_meaning import BOOKINFO, plan_of

STRIPE = """\
---
apiVersion: meshc/v1
kind: External
metadata: {name: stripe, namespace: bookinfo}
spec:
  hosts: [api.stripe.com]
  ports: [{name: https, port: 443, protocol: https}]
"""


def with_external(*, called: bool, hosts: str = "[api.stripe.com]") -> dict[str, str]:
    files = dict(BOOKINFO)
    files["stripe.yaml"] = STRIPE.replace("[api.stripe.com]", hosts)
    if called:
        old = "calls: [details, reviews]"
        assert old in files["productpage.yaml"]
        files["productpage.yaml"] = files["productpage.yaml"].replace(
            old, "calls: [details, reviews, stripe]"
        )
    return files


def egress_flags(plan_files: tuple[dict[str, str], dict[str, str]]) -> list[tuple[str, str]]:
    plan = plan_of(*plan_files)
    return [(f.subject, f.message) for f in plan.risks if f.code == "egress-added"]


def test_an_external_newly_called_is_flagged() -> None:
    base, head = with_external(called=False), with_external(called=True)
    assert egress_flags((base, head)) == [
        (
            "bookinfo/productpage",
            "productpage may now call outside the mesh: stripe api.stripe.com:443/https",
        )
    ]
    plan = plan_of(base, head)
    assert plan.meaning is not None
    assert [c.destination for c in plan.meaning.egress_added] == ["api.stripe.com:443/https"]
    assert plan.meaning.egress_removed == ()


def test_declaring_an_external_nobody_calls_is_not_egress() -> None:
    assert egress_flags((BOOKINFO, with_external(called=False))) == []


def test_a_new_host_on_a_called_external_is_flagged_and_only_that_host() -> None:
    base = with_external(called=True)
    head = with_external(called=True, hosts="[api.stripe.com, files.stripe.com]")
    assert egress_flags((base, head)) == [
        (
            "bookinfo/productpage",
            "productpage may now call outside the mesh: stripe files.stripe.com:443/https",
        )
    ]


def test_lost_egress_is_shown_but_not_flagged_in_every_format() -> None:
    plan = plan_of(with_external(called=True), with_external(called=False))
    assert [f.code for f in plan.risks if f.code == "egress-added"] == []
    document = plan_document(plan)
    removed = document["meaning"]["egress"]["removed"]
    assert [e["destination"] for e in removed] == ["api.stripe.com:443/https"]
    line = "productpage → stripe api.stripe.com:443/https (outside the mesh)"
    assert f"- {line}" in render_text(document)
    assert f"- {line}" in "".join(render_markdown(document))


def test_loosening_registry_only_or_network_default_deny_is_flagged() -> None:
    strict = dict(BOOKINFO)
    strict["mesh.yaml"] = (
        BOOKINFO["mesh.yaml"]
        .replace("    enabled: true\n", "    enabled: true\n    defaultDeny: true\n")
        .replace(
            "defaultAction: deny", "defaultAction: deny\n  outboundTrafficPolicy: REGISTRY_ONLY"
        )
    )
    assert "defaultDeny: true" in strict["mesh.yaml"]
    loose = dict(strict)
    loose["mesh.yaml"] = strict["mesh.yaml"].replace("defaultDeny: true", "defaultDeny: false")
    loose["mesh.yaml"] = loose["mesh.yaml"].replace("REGISTRY_ONLY", "ALLOW_ANY")
    flags = {(f.code, f.message) for f in plan_of(strict, loose).risks}
    assert (
        "egress-added",
        "outboundTrafficPolicy REGISTRY_ONLY → ALLOW_ANY: proxies pass hosts no External "
        "declares through",
    ) in flags
    assert any(code == "network-policy-disabled" for code, _ in flags)
    assert {f.code for f in plan_of(loose, strict).risks}.isdisjoint(
        {"egress-added", "network-policy-disabled"}
    )
