"""MC206, MC301, MC302, MC307: Service documents."""

from __future__ import annotations

from compiler.diagnostics import Severity
from tests.helpers import compile_files, findings
from tests.rules import only, where

REVIEWS = """\
apiVersion: meshc/v1
kind: Service
metadata: {name: reviews, namespace: bookinfo}
spec:
  identity: bookinfo-reviews
  ports: [{name: http, port: 9080, protocol: http}]
  versions:
    v1: {labels: {version: v1}}
    v2: {labels: {version: v2}}
"""

RATINGS = """\
apiVersion: meshc/v1
kind: Service
metadata: {name: ratings, namespace: bookinfo}
spec:
  identity: bookinfo-ratings
  ports: [{name: http, port: 9080, protocol: http}]
"""


def test_mc206_version_label_contradicting_selector() -> None:
    bad = REVIEWS.replace("v2: {labels: {version: v2}}", "v2: {labels: {app: reviews-v2}}")
    diag = only(compile_files({"reviews.yaml": bad}), "MC206")
    assert where(diag) == ("reviews.yaml", 9, 24)
    assert diag.severity is Severity.ERROR
    assert "version 'v2' of bookinfo/reviews" in diag.message
    assert "app=reviews-v2 contradicts the selector app=reviews" in diag.message
    assert "selects no workload" in diag.message
    assert "'app'" in diag.hint


def test_mc206_silent_on_extra_labels_and_same_value() -> None:
    good = REVIEWS.replace("{version: v2}", "{app: reviews, version: v2}")
    assert findings(compile_files({"reviews.yaml": good}), "MC206") == []


def test_mc301_two_services_sharing_an_identity() -> None:
    shared = RATINGS.replace("bookinfo-ratings", "bookinfo-reviews")
    compilation = compile_files({"reviews.yaml": REVIEWS, "ratings.yaml": shared})
    found = findings(compilation, "MC301")
    assert sorted(where(d) for d in found) == [("ratings.yaml", 5, 13), ("reviews.yaml", 5, 13)]
    by_file = {d.span.file: d for d in found}
    message = by_file["ratings.yaml"].message
    spiffe = "spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews"
    assert f"bookinfo/ratings runs as {spiffe}" in message
    assert "same identity as bookinfo/reviews" in message
    assert "allows the others" in message


def test_mc301_default_identity_collision_is_found_too() -> None:
    # `ratings` runs as the service account "reviews"; `reviews` defaults to "reviews".
    plain = REVIEWS.replace("  identity: bookinfo-reviews\n", "")
    borrowed = RATINGS.replace("bookinfo-ratings", "reviews")
    found = findings(compile_files({"reviews.yaml": plain, "ratings.yaml": borrowed}), "MC301")
    assert len(found) == 2
    # reviews has no identity key: the finding falls back to its spec mapping.
    assert ("reviews.yaml", 5, 3) in [where(d) for d in found]


def test_mc301_silent_with_distinct_identities() -> None:
    compilation = compile_files({"reviews.yaml": REVIEWS, "ratings.yaml": RATINGS})
    assert findings(compilation, "MC301") == []


def test_mc302_service_declared_twice() -> None:
    compilation = compile_files({"a.yaml": REVIEWS, "b.yaml": REVIEWS})
    diag = only(compilation, "MC302")
    assert where(diag) == ("b.yaml", 3, 18)
    expected = "Service bookinfo/reviews is declared twice (first declared at a.yaml:1:1)"
    assert expected in diag.message
    assert "ignored" in diag.message


def test_mc302_silent_for_same_name_in_other_namespace() -> None:
    other = REVIEWS.replace("namespace: bookinfo", "namespace: staging")
    assert findings(compile_files({"a.yaml": REVIEWS, "b.yaml": other}), "MC302") == []


def test_mc307_two_versions_with_identical_labels() -> None:
    bad = REVIEWS.replace("v2: {labels: {version: v2}}", "v2: {labels: {version: v1}}")
    diag = only(compile_files({"reviews.yaml": bad}), "MC307")
    assert where(diag) == ("reviews.yaml", 9, 5)
    assert "version 'v2' of bookinfo/reviews has the same labels as 'v1'" in diag.message
    assert "{app: reviews, version: v1}" in diag.message


def test_mc307_two_label_free_versions_collide() -> None:
    bad = REVIEWS.replace("{labels: {version: v1}}", "{}").replace("{labels: {version: v2}}", "{}")
    diag = only(compile_files({"reviews.yaml": bad}), "MC307")
    assert "'v2'" in diag.message and "'v1'" in diag.message


def test_mc307_silent_on_distinct_versions() -> None:
    assert findings(compile_files({"reviews.yaml": REVIEWS}), "MC307") == []


def test_mc103_selector_and_version_labels_must_be_kubernetes_labels() -> None:
    """Found by tests/lower/test_lowering_fuzz.py: `*` or a space in a label value passed
    lint and reached Istio, whose CRD rejects it (`wildcard is not supported in selector`)."""
    text = """\
apiVersion: meshc/v1
kind: Service
metadata: {name: api, namespace: shop}
spec:
  selector: {app: api, tier: "a*"}
  ports: [{name: http, port: 80}]
  versions: {v1: {labels: {"a/b/c": v1, track: "x y"}}}
"""
    compilation = compile_files({"s.yaml": text})
    found = sorted(findings(compilation, "MC103"), key=lambda d: d.span.line)
    assert [(d.span.line, d.message) for d in found] == [
        (
            5,
            "spec.selector.tier: label value 'a*' is not a Kubernetes label value (Kubernetes "
            "and Istio reject it, and '*' is no wildcard there); write at most 63 letters, "
            "digits, '-', '_' or '.', starting and ending with a letter or digit, or ''",
        ),
        (
            7,
            "spec.versions.v1.labels: key 'a/b/c': label key 'a/b/c' is not a Kubernetes label "
            "key; write an optional DNS prefix and '/', then 1-63 letters, digits, '-', '_' or "
            "'.', starting and ending with a letter or digit (e.g. app, app.kubernetes.io/name)",
        ),
        (
            7,
            "spec.versions.v1.labels.track: label value 'x y' is not a Kubernetes label value "
            "(Kubernetes and Istio reject it, and '*' is no wildcard there); write at most 63 "
            "letters, digits, '-', '_' or '.', starting and ending with a letter or digit, or ''",
        ),
    ]


def test_mc103_silent_for_valid_kubernetes_labels() -> None:
    text = """\
apiVersion: meshc/v1
kind: Service
metadata: {name: api, namespace: shop}
spec:
  selector: {app.kubernetes.io/name: api, x: "", T_9: a.b-c_D}
  ports: [{name: http, port: 80}]
  versions: {v1: {labels: {example.com/track: v1}}}
"""
    assert findings(compile_files({"s.yaml": text}), "MC103") == []


def test_mc301_lists_a_few_sharers_and_counts_the_rest() -> None:
    files = {"reviews.yaml": REVIEWS}
    for index in range(8):
        clone = RATINGS.replace("bookinfo-ratings", "bookinfo-reviews").replace(
            "name: ratings", f"name: ratings{index}"
        )
        files[f"ratings{index}.yaml"] = clone
    found = findings(compile_files(files), "MC301")
    assert len(found) == 9
    message = next(d.message for d in found if d.span.file == "reviews.yaml")
    assert "same identity as bookinfo/ratings0, bookinfo/ratings1" in message
    assert "and 3 more; a rule that allows one" in message
