"""MC202-MC205, MC207, MC303, MC304, MC403-MC409: AccessPolicy documents."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.api import Compilation, compile_tree, load_tree
from compiler.diagnostics import Severity
from compiler.lint.registry import REGISTRY
from tests.helpers import NOW, REPO, compile_files, findings, run_cli
from tests.rules import only, where

SERVICES = """\
apiVersion: meshc/v1
kind: Service
metadata: {name: productpage, namespace: bookinfo}
spec:
  identity: bookinfo-productpage
  ports: [{name: http, port: 9080, protocol: http}]
  calls: [reviews]
---
apiVersion: meshc/v1
kind: Service
metadata: {name: reviews, namespace: bookinfo}
spec:
  identity: bookinfo-reviews
  ports:
  - {name: http, port: 9080, targetPort: 8080, protocol: http}
  - {name: admin, port: 9090, protocol: http}
  calls: [ratings]
---
apiVersion: meshc/v1
kind: Service
metadata: {name: ratings, namespace: bookinfo}
spec:
  identity: bookinfo-ratings
  ports: [{name: http, port: 9080, protocol: http}]
---
apiVersion: meshc/v1
kind: AccessPolicy
metadata: {name: ratings, namespace: bookinfo}
spec:
  service: ratings
  rules:
  - from: [{service: reviews}]
"""

HEAD = """\
apiVersion: meshc/v1
kind: AccessPolicy
metadata: {name: reviews, namespace: bookinfo}
spec:
  service: reviews
  rules:
"""
"""Policy files start with HEAD; their rules begin on line 7 (`  - from: ...`)."""


def policy(rules: str, *, head: str = HEAD) -> str:
    return head + rules


def lint(
    rules: str,
    *,
    head: str = HEAD,
    extra: dict[str, str] | None = None,
    now: datetime | None = None,
) -> Compilation:
    files = {"services.yaml": SERVICES, "policy.yaml": policy(rules, head=head), **(extra or {})}
    if now is None:
        return compile_files(files)
    return compile_files(files, now=now)


GOOD = """\
  - from: [{service: productpage}]
    to: {methods: [GET], paths: ["/reviews/*"]}
"""


# --- references ---------------------------------------------------------------------------


def test_mc202_policy_for_undeclared_service() -> None:
    diag = only(lint(GOOD, head=HEAD.replace("service: reviews", "service: review")), "MC202")
    assert where(diag) == ("policy.yaml", 5, 12)
    assert diag.severity is Severity.ERROR
    expected = "AccessPolicy 'reviews' is for bookinfo/review, which no Service declares"
    assert expected in diag.message


def test_mc202_silent_for_cross_namespace_reference() -> None:
    head = HEAD.replace("namespace: bookinfo", "namespace: ops").replace(
        "service: reviews", "service: bookinfo/reviews"
    )
    rules = GOOD.replace("service: productpage", "service: bookinfo/productpage")
    compilation = lint(rules, head=head)
    assert findings(compilation, "MC202") == []
    assert findings(compilation, "MC203") == []


def test_mc203_source_service_undeclared() -> None:
    rules = "  - from: [{service: productpage}, {service: productpgae}]\n"
    diag = only(lint(rules), "MC203")
    assert where(diag) == ("policy.yaml", 7, 46)
    assert "source service bookinfo/productpgae is not declared" in diag.message
    assert "admits nobody" in diag.message


def test_mc203_silent_for_declared_and_wildcard_sources() -> None:
    rules = GOOD + "  - from: [{service: '*'}]\n    justification: health checks\n"
    assert findings(lint(rules), "MC203") == []


def test_mc204_identity_of_no_declared_service() -> None:
    rules = "  - from: [{identity: bookinfo/bookinfo-productpage-sa}]\n"
    diag = only(lint(rules), "MC204")
    assert where(diag) == ("policy.yaml", 7, 23)
    assert diag.severity is Severity.WARNING
    assert (
        "source identity spiffe://cluster.local/ns/bookinfo/sa/bookinfo-productpage-sa is not "
        "the identity of any declared Service" in diag.message
    )


def test_mc204_silent_for_known_identities() -> None:
    rules = (
        "  - from: [{identity: bookinfo/bookinfo-productpage}]\n"
        "  - from: [{identity: 'spiffe://cluster.local/ns/bookinfo/sa/bookinfo-ratings'}]\n"
        "  - from: [{identity: istio-system/istio-ingressgateway-service-account}]\n"
    )
    assert findings(lint(rules), "MC204") == []


def test_mc205_namespace_without_services() -> None:
    diag = only(lint("  - from: [{namespace: bookinf}]\n"), "MC205")
    assert where(diag) == ("policy.yaml", 7, 24)
    assert "source namespace 'bookinf' has no declared Service" in diag.message
    assert "ingressGateway: true" in diag.hint


def test_mc205_silent_for_namespace_with_services() -> None:
    assert findings(lint("  - from: [{namespace: bookinfo}]\n"), "MC205") == []


def test_mc207_port_the_service_does_not_have() -> None:
    rules = "  - from: [{service: productpage}]\n    to: {ports: [http, 8080]}\n"
    diag = only(lint(rules), "MC207")
    assert where(diag) == ("policy.yaml", 8, 24)
    assert "port 8080 is not a port of bookinfo/reviews" in diag.message
    assert "http (9080), admin (9090)" in diag.message
    assert "allow rule never matches" in diag.message
    assert diag.hint == "write the service port 9080, not the container port"


def test_mc207_unknown_port_name() -> None:
    diag = only(lint("  - from: [{service: productpage}]\n    to: {ports: [grpc]}\n"), "MC207")
    assert "port 'grpc' is not a port of bookinfo/reviews" in diag.message
    assert "use one of the service's ports" in diag.hint


def test_mc207_silent_for_port_numbers_and_names() -> None:
    rules = "  - from: [{service: productpage}]\n    to: {ports: [9080, admin]}\n"
    assert findings(lint(rules), "MC207") == []


# --- conflicts ----------------------------------------------------------------------------


def test_mc303_deny_makes_allow_dead() -> None:
    rules = GOOD + "  - from: [{namespace: bookinfo}]\n    action: deny\n"
    diag = only(lint(rules), "MC303")
    assert where(diag) == ("policy.yaml", 7, 5)
    assert "allow rule 1 for bookinfo/reviews never takes effect" in diag.message
    assert "deny rule 2 of AccessPolicy 'reviews' at policy.yaml:9:5" in diag.message


def test_mc303_deny_in_another_policy_for_the_same_service() -> None:
    deny = policy(
        "  - from: [{service: productpage}]\n    to: {methods: [GET, POST]}\n    action: deny\n",
        head=HEAD.replace("name: reviews, namespace", "name: reviews-deny, namespace"),
    )
    diag = only(lint(GOOD, extra={"deny.yaml": deny}), "MC303")
    assert where(diag) == ("policy.yaml", 7, 5)
    assert "AccessPolicy 'reviews-deny' at deny.yaml:7:5" in diag.message


def test_mc303_silent_when_deny_is_narrower() -> None:
    rules = (
        GOOD
        + "  - from: [{namespace: bookinfo}]\n    to: {methods: [DELETE]}\n    action: deny\n"
        + "  - from: [{service: productpage}]\n    to: {paths: ['/reviews/admin*']}\n"
        + "    action: deny\n"
    )
    assert findings(lint(rules), "MC303") == []


def test_mc304_allow_covered_by_broader_allow() -> None:
    rules = (
        "  - from: [{service: productpage}]\n    to: {methods: [GET]}\n"
        "  - from: [{identity: bookinfo/bookinfo-productpage}]\n"
        "    to: {methods: [GET], paths: ['/reviews/*'], ports: [http]}\n"
    )
    diag = only(lint(rules), "MC304")
    assert where(diag) == ("policy.yaml", 9, 5)
    assert "allow rule 2 for bookinfo/reviews is redundant" in diag.message
    assert "rule 1 of AccessPolicy 'reviews' at policy.yaml:7:5" in diag.message


def test_mc304_identical_rules_report_the_later_one_only() -> None:
    diag = only(lint(GOOD + GOOD), "MC304")
    assert where(diag) == ("policy.yaml", 9, 5)


def test_mc304_silent_for_disjoint_or_logged_rules() -> None:
    rules = (
        GOOD
        + "  - from: [{service: productpage}]\n    to: {methods: [POST], paths: ['/reviews/*']}\n"
        + "  - from: [{service: productpage}]\n    to: {methods: [GET], paths: ['/reviews/1']}\n"
        + "    log: true\n"
    )
    assert findings(lint(rules), "MC304") == []


# --- security -----------------------------------------------------------------------------


def test_mc403_wildcard_without_justification() -> None:
    diag = only(lint("  - from: [{identity: '*'}]\n    to: {paths: [/health]}\n"), "MC403")
    assert where(diag) == ("policy.yaml", 7, 23)
    assert diag.severity is Severity.ERROR
    assert "admits any mesh identity ('*') without a justification" in diag.message
    assert "justification" in diag.hint


def test_mc403_silent_with_justification_or_in_a_deny() -> None:
    rules = (
        "  - from: [{service: '*'}]\n    to: {paths: [/health]}\n"
        "    justification: liveness probes through the mesh\n"
        "  - from: [{namespace: '*'}]\n    to: {paths: ['/admin*']}\n    action: deny\n"
    )
    assert findings(lint(rules), "MC403") == []


def test_mc404_own_namespace() -> None:
    diag = only(lint("  - from: [{namespace: bookinfo}]\n"), "MC404")
    assert where(diag) == ("policy.yaml", 7, 24)
    expected = "rule 1 admits every workload in its own namespace 'bookinfo' to bookinfo/reviews"
    assert expected in diag.message


def test_mc404_other_namespace_says_so() -> None:
    other = SERVICES.split("---\n")[2].replace("namespace: bookinfo", "namespace: frontend")
    diag = only(lint("  - from: [{namespace: frontend}]\n", extra={"f.yaml": other}), "MC404")
    assert "every workload in another namespace 'frontend'" in diag.message


def test_mc404_silent_for_named_services() -> None:
    assert findings(lint(GOOD), "MC404") == []


def test_mc405_policy_on_port_without_protocol() -> None:
    services = SERVICES.replace("port: 9090, protocol: http}", "port: 9090}")
    compilation = compile_files({"services.yaml": services, "policy.yaml": policy(GOOD)})
    diag = only(compilation, "MC405")
    assert where(diag) == ("services.yaml", 16, 5)
    assert "port 'admin' (9090) of bookinfo/reviews has no protocol" in diag.message
    assert "methods, paths and headers may not be enforced" in diag.message


def test_mc405_silent_without_policy_or_with_protocols() -> None:
    services = SERVICES.replace("port: 9090, protocol: http}", "port: 9090}")
    assert findings(compile_files({"services.yaml": services}), "MC405") == []
    assert findings(lint(GOOD), "MC405") == []


def _mesh(mtls: str) -> dict[str, str]:
    return {"mesh.yaml": f"apiVersion: meshc/v1\nkind: Mesh\nmetadata: {{name: m}}\nspec:\n{mtls}"}


def test_mc406_live_exception_with_deny_rules() -> None:
    mesh = _mesh(
        "  mtls:\n    exceptions: [{service: bookinfo/reviews, until: 2027-01-31, reason: x}]\n"
    )
    rules = GOOD + "  - from: [{service: ratings}]\n    action: deny\n"
    diag = only(lint(rules, extra=mesh), "MC406")
    assert where(diag) == ("policy.yaml", 5, 12)
    assert "matches callers of bookinfo/reviews by identity" in diag.message
    assert "permissive mTLS exception until 2027-01-31" in diag.message
    assert "deny rules do not stop them" in diag.message


def test_mc406_mesh_wide_permissive() -> None:
    permissive = _mesh("  mtls: {mode: permissive, until: 2027-01-31}\n")
    found = findings(lint(GOOD, extra=permissive), "MC406")
    # Both policies (reviews in policy.yaml, ratings in services.yaml) are affected.
    assert sorted(where(d) for d in found) == [("policy.yaml", 5, 12), ("services.yaml", 30, 12)]
    diag = found[0]
    assert "mTLS is permissive mesh-wide until 2027-01-31" in diag.message
    assert "evaluated at 2026-11-25T12:00:00Z" in diag.message
    assert "cannot admit them" in diag.message


def test_mc406_silent_when_strict_or_exception_expired() -> None:
    assert findings(lint(GOOD), "MC406") == []
    expired = _mesh(
        "  mtls:\n    exceptions: [{service: bookinfo/reviews, until: 2026-01-31, reason: x}]\n"
    )
    assert findings(lint(GOOD, extra=expired), "MC406") == []
    # Permissive without `until` is not lowered (the mesh stays strict); MC401 reports it.
    assert findings(lint(GOOD, extra=_mesh("  mtls: {mode: permissive}\n")), "MC406") == []
    permissive = _mesh("  mtls: {mode: permissive, until: 2026-12-01}\n")
    later = lint(GOOD, extra=permissive, now=datetime(2026, 12, 2, tzinfo=UTC))
    assert findings(later, "MC406") == []


def test_mc407_no_rule_admits_the_caller() -> None:
    diag = only(lint("  - from: [{service: ratings}]\n"), "MC407")
    assert where(diag) == ("services.yaml", 7, 11)
    assert diag.severity is Severity.ERROR
    assert (
        "bookinfo/productpage calls bookinfo/reviews, which will deny it: no rule of "
        "bookinfo/reviews's AccessPolicy allows bookinfo/productpage" in diag.message
    )
    assert "from: [{service: productpage}]" in diag.hint


def test_mc407_default_deny_without_policy() -> None:
    compilation = compile_files({"services.yaml": SERVICES})
    diag = only(compilation, "MC407")
    assert "bookinfo/reviews has no AccessPolicy and the mesh default is deny" in diag.message
    assert "write an AccessPolicy for bookinfo/reviews" in diag.hint


def test_mc407_explicitly_denied() -> None:
    rules = GOOD + "  - from: [{namespace: bookinfo}]\n    action: deny\n"
    diag = only(lint(rules), "MC407")
    assert (
        "deny rule 2 of policy.yaml#AccessPolicy/bookinfo/reviews matches every request from "
        "bookinfo/productpage" in diag.message
    )
    assert "narrow the deny rule" in diag.hint


def test_mc407_silent_when_allowed() -> None:
    assert findings(lint(GOOD), "MC407") == []


def test_mc408_allow_no_client_uses() -> None:
    diag = only(lint(GOOD + "  - from: [{service: ratings}]\n    to: {methods: [GET]}\n"), "MC408")
    assert where(diag) == ("policy.yaml", 9, 22)
    assert diag.severity is Severity.INFO
    assert (
        "no client uses this allow: bookinfo/ratings does not declare a call to "
        "bookinfo/reviews" in diag.message
    )
    assert "add reviews to the calls: of bookinfo/ratings" in diag.hint


def test_mc408_silent_for_declared_calls() -> None:
    assert findings(lint(GOOD), "MC408") == []


def test_mc409_header_as_the_only_check_on_a_broad_source() -> None:
    rules = GOOD + "  - from: [{namespace: bookinfo}]\n    headers: {x-internal: ['true']}\n"
    diag = only(lint(rules), "MC409")
    assert where(diag) == ("policy.yaml", 10, 15)
    assert "admits every workload in namespace 'bookinfo'" in diag.message
    assert "tells them apart only by the request header 'x-internal'" in diag.message
    assert "a value the caller controls" in diag.message


def test_mc409_ingress_gateway_counts_as_broad() -> None:
    rules = (
        GOOD
        + "  - from: [{service: productpage}, {ingressGateway: true}]\n"
        + "    headers: {x-admin: ['yes']}\n"
    )
    diag = only(lint(rules), "MC409")
    assert "admits the ingress gateway (requests from outside the mesh)" in diag.message


def test_mc409_silent_for_identified_callers() -> None:
    rules = "  - from: [{service: productpage}]\n    headers: {x-tenant: [a]}\n"
    assert findings(lint(rules), "MC409") == []


# --- the example repository ---------------------------------------------------------------


def test_bookinfo_policies_lint_clean_at_warning_level() -> None:
    result = run_cli("meshc", "lint", str(REPO / "policies"), "--now", "2026-11-25T12:00:00Z")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 error(s), 0 warning(s)" in result.stdout


def test_bookinfo_policies_have_no_access_findings_at_all() -> None:
    compilation = compile_tree(load_tree(REPO / "policies"), now=NOW)
    modules = {f"compiler.kinds.{kind}.checks" for kind in ("service", "mesh", "access_policy")}
    mine = {code for code, r in REGISTRY.items() if r.check and r.check.__module__ in modules}
    assert len(mine) >= 25
    ours = [d for d in compilation.diagnostics if d.code in mine]
    assert [f"{d.span} {d.code} {d.message}" for d in ours] == []


# --- robustness ---------------------------------------------------------------------------

_SOURCES = st.sampled_from(
    [
        "{service: productpage}",
        "{service: ratings}",
        "{service: bookinfo/reviews}",
        "{service: nowhere}",
        "{service: '*'}",
        "{namespace: bookinfo}",
        "{namespace: other}",
        "{identity: bookinfo/bookinfo-ratings}",
        "{identity: 'spiffe://cluster.local/ns/x/sa/y'}",
        "{ingressGateway: true}",
    ]
)
_TO = st.sampled_from(
    [
        "",
        "    to: {methods: [GET]}\n",
        "    to: {ports: [http, 9090], paths: ['/reviews/*']}\n",
        "    to: {ports: [1234], methods: [GET, POST], paths: ['*.css', /a]}\n",
    ]
)
_TAIL = st.sampled_from(
    ["", "    action: deny\n", "    headers: {x-a: [b]}\n", "    log: true\n    justification: j\n"]
)


@st.composite
def _rules(draw: st.DrawFn) -> str:
    text = ""
    for _ in range(draw(st.integers(1, 4))):
        sources = draw(st.lists(_SOURCES, min_size=1, max_size=3))
        text += f"  - from: [{', '.join(sources)}]\n" + draw(_TO) + draw(_TAIL)
    return text


@settings(max_examples=60, deadline=None)
@given(rules=_rules(), mode=st.sampled_from(["enforce", "shadow"]))
def test_random_policies_never_break_a_rule_and_lint_deterministically(
    rules: str, mode: str
) -> None:
    head = HEAD.replace("  rules:\n", f"  mode: {mode}\n  rules:\n")
    first, second = lint(rules, head=head), lint(rules, head=head)
    assert [d for d in first.diagnostics if d.code in ("MC000", "MC103", "MC105")] == []
    assert first.diagnostics == second.diagnostics
    for diag in first.diagnostics:
        assert diag.span.file in ("policy.yaml", "services.yaml", "mesh.yaml"), diag
        assert diag.span.line >= 1 and diag.message


def test_findings_sit_on_the_line_a_suppression_names() -> None:
    rules = (
        "  - from: [{namespace: bookinfo}]  "
        "# meshc: ignore[MC404] reason: batch jobs in bookinfo are short-lived and unnamed\n"
    )
    compilation = lint(rules)
    assert findings(compilation, "MC404") == []
    suppressed = [d for d in compilation.diagnostics if d.code == "MC404"]
    assert [d.suppressed_reason for d in suppressed] == [
        "batch jobs in bookinfo are short-lived and unnamed"
    ]


def test_mc412_a_shadow_only_service_admits_every_identity() -> None:
    from tests.helpers import compile_files

    service = (
        "apiVersion: meshc/v1\nkind: Service\nmetadata: {name: pay, namespace: shop}\n"
        "spec: {ports: [{name: http, port: 80}]}\n"
    )
    policy = (
        "apiVersion: meshc/v1\nkind: AccessPolicy\nmetadata: {name: pay, namespace: shop}\n"
        "spec:\n  service: pay\n  mode: shadow\n  rules:\n  - from: [{namespace: shop}]\n"
    )
    shadow = compile_files({"s.yaml": service, "p.yaml": policy}).diagnostics
    [diag] = [d for d in shadow if d.code == "MC412"]
    assert (diag.span.file, diag.span.line, diag.severity.label) == ("p.yaml", 6, "info")
    enforced = compile_files({"s.yaml": service, "p.yaml": policy.replace("shadow", "enforce")})
    assert [d for d in enforced.diagnostics if d.code == "MC412"] == []
