"""Rollout lint rules (MC220, MC222, MC320, MC321, MC501-MC508): each fires on the mistake
it names, at the offending node, and stays silent on the corrected input."""

from __future__ import annotations

import textwrap

from compiler.api import Compilation
from tests.helpers import compile_files, findings
from tests.rules import document, locate, only, where

SERVICE = """\
apiVersion: meshc/v1
kind: Service
metadata: {name: reviews, namespace: shop}
spec:
  ports: [{name: http, port: 9080, protocol: http}]
  versions: {v1: {labels: {version: v1}}, v2: {labels: {version: v2}}, v3: {labels: {version: v3}}}
"""

GET_ONLY = """\
apiVersion: meshc/v1
kind: AccessPolicy
metadata: {name: reviews, namespace: shop}
spec:
  service: reviews
  rules:
  - from: [{namespace: shop}]
    to: {methods: [GET]}
"""

WITH_POST = """\
apiVersion: meshc/v1
kind: AccessPolicy
metadata: {name: reviews, namespace: shop}
spec:
  service: reviews
  rules:
  - from: [{namespace: shop}]
    to: {methods: [GET, POST], paths: ["/reviews/*"]}
"""


def rollout(spec: str, *, name: str = "reviews") -> str:
    """A Rollout document in namespace shop; `spec` is the body under `spec:`."""
    return document("Rollout", spec, name=name)


def stable_v1(spec: str, *, name: str = "reviews") -> str:
    """A Rollout of shop/reviews with stable v1; `spec` is the rest of its body."""
    return rollout("service: reviews\nstable: v1\n" + textwrap.dedent(spec), name=name)


def lint(rollout_text: str, *, service: str = SERVICE, policy: str = GET_ONLY) -> Compilation:
    return compile_files({"svc.yaml": service + "---\n" + policy, "rollout.yaml": rollout_text})


def test_mc220_rollout_for_undeclared_service() -> None:
    text = rollout("service: review\nstable: v1\n")
    diag = only(lint(text), "MC220")
    assert where(diag) == ("rollout.yaml", *locate(text, "review\n"))
    assert "'review' is not declared" in diag.message
    assert "declare the Service" in diag.hint


def test_mc220_silent_for_declared_service() -> None:
    assert findings(lint(stable_v1("")), "MC220") == []


def test_mc220_resolves_other_namespace() -> None:
    text = rollout("service: shop/reviews\nstable: v1\n")
    assert findings(lint(text), "MC220") == []


def test_mc222_unknown_versions_in_every_role() -> None:
    text = rollout(
        """\
        service: reviews
        stable: v0
        split: {v0: 90, v4: 10}
        match:
        - headers: {end-user: {exact: jason}}
          version: v5
        """
    )
    found = findings(lint(text), "MC222")
    by_message = {d.message: where(d) for d in found}
    assert by_message == {
        "shop/reviews: stable version 'v0' is not declared by the Service": (
            "rollout.yaml",
            *locate(text, "v0\n"),
        ),
        "shop/reviews: split version 'v0' is not declared by the Service": (
            "rollout.yaml",
            *locate(text, "v0:"),
        ),
        "shop/reviews: split version 'v4' is not declared by the Service": (
            "rollout.yaml",
            *locate(text, "v4:"),
        ),
        "shop/reviews: match[0] version 'v5' is not declared by the Service": (
            "rollout.yaml",
            *locate(text, "v5"),
        ),
    }
    assert all("v1, v2, v3" in d.hint for d in found)


def test_mc222_unknown_canary_suggests_closest() -> None:
    text = stable_v1("canary: v3x\nsteps: [{weight: 100}]\n")
    diag = only(lint(text), "MC222")
    assert where(diag) == ("rollout.yaml", *locate(text, "v3x"))
    assert "canary version 'v3x'" in diag.message
    assert "did you mean 'v3'?" in diag.hint


def test_mc222_silent_when_versions_exist() -> None:
    text = stable_v1(
        """\
        split: {v1: 90, v3: 10}
        match: [{headers: {end-user: {exact: jason}}, version: v2}]
        """
    )
    assert findings(lint(text), "MC222") == []


def test_mc320_second_rollout_for_one_service() -> None:
    first = stable_v1("", name="reviews-a")
    second = rollout("service: reviews\nstable: v2\n", name="reviews-b")
    compilation = compile_files(
        {"svc.yaml": SERVICE + "---\n" + GET_ONLY, "a.yaml": first, "b.yaml": second}
    )
    diag = only(compilation, "MC320")
    assert where(diag) == ("b.yaml", *locate(second, "reviews\n"))
    assert "second Rollout" in diag.message
    assert "a.yaml#Rollout/shop/reviews-a" in diag.message


def test_mc320_silent_for_rollouts_of_different_services() -> None:
    other = SERVICE.replace("name: reviews", "name: ratings")
    compilation = compile_files(
        {
            "svc.yaml": SERVICE + "---\n" + other,
            "a.yaml": stable_v1("", name="a"),
            "b.yaml": rollout("service: ratings\nstable: v1\n", name="b"),
        }
    )
    assert findings(compilation, "MC320") == []


def test_mc321_later_match_shadowed_by_wider_prefix() -> None:
    text = stable_v1(
        """\
        match:
        - headers: {end-user: {prefix: j}}
          version: v2
        - headers: {End-User: {exact: jason}, x-beta: {exact: "1"}}
          version: v3
        """
    )
    diag = only(lint(text), "MC321")
    line, _ = locate(text, "End-User")
    assert where(diag)[:2] == ("rollout.yaml", line)
    assert "match[1] can never fire" in diag.message
    assert "match[0]" in diag.message and "v2" in diag.message
    assert "move it before match[0]" in diag.hint


def test_mc321_regex_covers_exact_and_cookie_duplicate() -> None:
    text = stable_v1(
        """\
        match:
        - cookies: {group: {regex: "beta-.*"}}
          version: v2
        - cookies: {group: {exact: beta-7}}
          version: v3
        """
    )
    diag = only(lint(text), "MC321")
    assert "match[1] can never fire" in diag.message


def test_mc321_silent_when_specific_rule_comes_first() -> None:
    text = stable_v1(
        """\
        match:
        - headers: {end-user: {exact: jason}}
          version: v3
        - headers: {end-user: {prefix: j}}
          version: v2
        - headers: {end-user: {prefix: j}}
          cookies: {group: {exact: beta}}
          version: v3
        """
    )
    compilation = lint(text)
    # rule 2 adds a cookie but rule 1 (prefix j) still takes every request it matches
    found = findings(compilation, "MC321")
    assert [d.message.split(";")[0] for d in found] == ["shop/reviews: match[2] can never fire"]
    text_ok = stable_v1(
        """\
        match:
        - headers: {end-user: {exact: jason}}
          version: v3
        - headers: {end-user: {prefix: j}}
          version: v2
        - cookies: {group: {exact: beta}}
          version: v3
        """
    )
    assert findings(lint(text_ok), "MC321") == []


def test_mc501_split_not_summing_to_100() -> None:
    text = stable_v1("split: {v1: 90, v3: 5}\n")
    diag = only(lint(text), "MC501")
    assert where(diag) == ("rollout.yaml", *locate(text, "{v1"))
    assert "sum to 95 (90 + 5), not 100" in diag.message
    assert "add up to 100" in diag.hint


def test_mc501_silent_when_split_sums_to_100() -> None:
    assert findings(lint(stable_v1("split: {v1: 95, v3: 5}\n")), "MC501") == []


def test_mc502_steps_decreasing_and_not_ending_at_100() -> None:
    text = stable_v1(
        """\
        canary: v3
        steps:
        - {weight: 10, pause: 5m}
        - {weight: 5, pause: 5m}
        - {weight: 50}
        """
    )
    found = findings(lint(text), "MC502")
    messages = {d.message: where(d) for d in found}
    assert messages == {
        "shop/reviews: step 1 lowers the canary weight from 10 to 5": (
            "rollout.yaml",
            *locate(text, "5,"),
        ),
        "shop/reviews: the last step sends 50% to the canary, so the rollout never completes": (
            "rollout.yaml",
            *locate(text, "50"),
        ),
    }


def test_mc502_empty_steps() -> None:
    text = stable_v1("canary: v3\nsteps: []\n")
    diag = only(lint(text), "MC502")
    assert "steps is empty" in diag.message
    assert where(diag) == ("rollout.yaml", *locate(text, "[]"))


def test_mc502_silent_for_progressive_steps() -> None:
    text = stable_v1("canary: v3\nsteps: [{weight: 5}, {weight: 5}, {weight: 50}, {weight: 100}]\n")
    assert findings(lint(text), "MC502") == []


def test_mc503_weights_outside_0_100() -> None:
    text = stable_v1(
        """\
        canary: v3
        steps: [{weight: -5}, {weight: 150}, {weight: 100}]
        """
    )
    found = findings(lint(text), "MC503")
    assert {d.message: where(d) for d in found} == {
        "shop/reviews: step 0 weight -5 is outside 0-100": ("rollout.yaml", *locate(text, "-5")),
        "shop/reviews: step 1 weight 150 is outside 0-100": ("rollout.yaml", *locate(text, "150")),
    }
    split = stable_v1("split: {v1: 120, v3: -20}\n")
    found = findings(lint(split), "MC503")
    assert sorted(d.message for d in found) == [
        "shop/reviews: split weight -20 for v3 is outside 0-100",
        "shop/reviews: split weight 120 for v1 is outside 0-100",
    ]
    assert findings(lint(split), "MC501") == []  # the sum is 100; only the range is wrong


def test_mc503_silent_for_weights_in_range() -> None:
    text = stable_v1("split: {v1: 100, v3: 0}\n")
    assert findings(lint(text), "MC503") == []


def test_mc504_mirror_to_undeclared_version() -> None:
    text = stable_v1("mirror: {version: v9}\n")
    diag = only(lint(text), "MC504")
    assert where(diag) == ("rollout.yaml", *locate(text, "v9"))
    assert "mirror version 'v9' is not declared" in diag.message
    assert findings(lint(text), "MC222") == []  # reported once, by the mirror rule


def test_mc504_silent_for_declared_mirror() -> None:
    assert findings(lint(stable_v1("mirror: {version: v3}\n")), "MC504") == []


def test_mc505_mirror_of_service_accepting_post() -> None:
    text = stable_v1("mirror: {version: v3, percentage: 10}\n")
    diag = only(lint(text, policy=WITH_POST), "MC505")
    assert where(diag) == ("rollout.yaml", *locate(text, "{version"))
    assert "mirroring to v3 repeats non-idempotent requests" in diag.message
    assert "AccessPolicies allow POST" in diag.message
    assert "allowNonIdempotent: true" in diag.hint


def test_mc505_mirror_of_unrestricted_service() -> None:
    shadow = GET_ONLY.replace("service: reviews\n", "service: reviews\n  mode: shadow\n")
    text = stable_v1("mirror: {version: v3}\n")
    diag = only(lint(text, policy=shadow), "MC505")
    assert "no enforced AccessPolicy restricts its methods" in diag.message


def test_mc505_silent_for_get_only_or_opt_in() -> None:
    plain = stable_v1("mirror: {version: v3}\n")
    assert findings(lint(plain, policy=GET_ONLY), "MC505") == []
    opted = stable_v1("mirror: {version: v3, allowNonIdempotent: true}\n")
    assert findings(lint(opted, policy=WITH_POST), "MC505") == []


def test_mc506_mirror_percentage_out_of_range() -> None:
    text = stable_v1("mirror: {version: v3, percentage: 150}\n")
    diag = only(lint(text), "MC506")
    assert where(diag) == ("rollout.yaml", *locate(text, "150"))
    assert "mirror percentage 150 is outside 0-100" in diag.message


def test_mc506_silent_in_range() -> None:
    text = stable_v1("mirror: {version: v3, percentage: 12.5}\n")
    assert findings(lint(text), "MC506") == []


TCP_SERVICE = SERVICE.replace("protocol: http", "protocol: tcp")
MATCH = (
    "service: reviews\nstable: v1\nmatch: [{headers: {end-user: {exact: jason}}, version: v2}]\n"
)


def test_mc507_header_match_on_tcp_only_service() -> None:
    text = rollout(MATCH)
    diag = only(lint(text, service=TCP_SERVICE), "MC507")
    assert where(diag) == ("rollout.yaml", *locate(text, "[{headers"))
    assert "ports are all tcp" in diag.message
    assert "http" in diag.hint


def test_mc507_silent_on_http_service() -> None:
    assert findings(lint(rollout(MATCH)), "MC507") == []
    no_match = stable_v1("split: {v1: 50, v2: 50}\n")
    assert findings(lint(no_match, service=TCP_SERVICE), "MC507") == []


def test_mc508_mirror_into_version_with_live_split_weight() -> None:
    text = stable_v1("split: {v1: 90, v3: 10}\nmirror: {version: v3}\n")
    diag = only(lint(text), "MC508")
    assert where(diag) == ("rollout.yaml", *locate(text, "v3}"))
    assert "mirror target v3 already takes live traffic (split weight 10)" in diag.message


def test_mc508_mirror_into_stable_without_split() -> None:
    text = stable_v1("mirror: {version: v1}\n")
    diag = only(lint(text), "MC508")
    assert "stable (all default traffic)" in diag.message


def test_mc508_silent_for_shadow_version() -> None:
    text = stable_v1("split: {v1: 100, v3: 0}\nmirror: {version: v3}\n")
    assert findings(lint(text), "MC508") == []
    steps = stable_v1("canary: v3\nsteps: [{weight: 10}, {weight: 100}]\nmirror: {version: v2}\n")
    assert findings(lint(steps), "MC508") == []


def test_mc321_never_executes_user_regexes() -> None:
    # a backtracking-prone regex is not evaluated: coverage is only claimed when certain
    text = stable_v1(
        """\
        match:
        - headers: {end-user: {regex: "(a+)+$"}}
          version: v2
        - headers: {end-user: {exact: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!}}
          version: v3
        - headers: {end-user: {regex: "(a+)+$"}}
          version: v3
        """
    )
    found = findings(lint(text), "MC321")
    assert [d.message.split(";")[0] for d in found] == ["shop/reviews: match[2] can never fire"]


def test_mc501_empty_split() -> None:
    text = stable_v1("split: {}\n")
    diag = only(lint(text), "MC501")
    assert diag.message == "shop/reviews: split is empty, so no version gets traffic"
    assert where(diag) == ("rollout.yaml", *locate(text, "{}"))
    assert "{v1: 100}" in diag.hint


def test_mc509_canary_equal_to_stable() -> None:
    text = stable_v1("canary: v1\nsteps: [{weight: 10}, {weight: 100}]\n")
    diag = only(lint(text), "MC509")
    assert where(diag) == ("rollout.yaml", *locate(text, "v1\n  steps"))
    assert "canary v1 is also the stable version" in diag.message


def test_mc509_silent_for_distinct_canary() -> None:
    text = stable_v1("canary: v3\nsteps: [{weight: 10}, {weight: 100}]\n")
    assert findings(lint(text), "MC509") == []


def test_mc513_analysis_is_said_to_be_not_evaluated() -> None:
    from tests.helpers import compile_files

    service = (
        "apiVersion: meshc/v1\nkind: Service\nmetadata: {name: web, namespace: shop}\n"
        "spec: {ports: [{name: http, port: 80}], versions: {v1: {labels: {v: '1'}}, "
        "v2: {labels: {v: '2'}}}}\n"
    )
    rollout = (
        "apiVersion: meshc/v1\nkind: Rollout\nmetadata: {name: web, namespace: shop}\n"
        "spec:\n  service: web\n  stable: v1\n  canary: v2\n"
        "  steps:\n  - {weight: 10, analysis: {successRate: 99}}\n  - {weight: 100}\n"
    )
    found = [d for d in compile_files({"s.yaml": service, "r.yaml": rollout}).diagnostics]
    [diag] = [d for d in found if d.code == "MC513"]
    assert (diag.span.file, diag.span.line) == ("r.yaml", 9)
    assert "steps[0].analysis is not evaluated yet" in diag.message
    assert diag.severity.label == "info"
