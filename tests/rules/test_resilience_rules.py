"""Resilience lint rules (MC221, MC223, MC322, MC601-MC611): each fires on the mistake it
names, at the offending node, and stays silent on the corrected input."""

from __future__ import annotations

from compiler.api import Compilation
from tests.helpers import compile_files, findings
from tests.rules import document, locate, only, where

SERVICE = """\
apiVersion: meshc/v1
kind: Service
metadata: {name: ratings, namespace: shop}
spec:
  ports: [{name: http, port: 9080, targetPort: 8080, protocol: http}]
  versions: {v1: {labels: {version: v1}}}
"""

GET_ONLY = """\
apiVersion: meshc/v1
kind: AccessPolicy
metadata: {name: ratings, namespace: shop}
spec:
  service: ratings
  rules:
  - from: [{namespace: shop}]
    to: {methods: [GET, PUT]}
"""

WITH_POST = """\
apiVersion: meshc/v1
kind: AccessPolicy
metadata: {name: ratings, namespace: shop}
spec:
  service: ratings
  rules:
  - from: [{namespace: shop}]
    to: {methods: [GET]}
  - from: [{namespace: shop}]
    to: {methods: [POST, PATCH], paths: ["/ratings/*"]}
"""


def resilience(spec: str, *, name: str = "ratings") -> str:
    """A Resilience document in namespace shop; `spec` is the body under `spec:`."""
    return document("Resilience", spec, name=name)


def lint(text: str, *, policy: str = GET_ONLY) -> Compilation:
    return compile_files({"svc.yaml": SERVICE + "---\n" + policy, "res.yaml": text})


def lint_two(first: str, second: str) -> Compilation:
    """Two Resilience documents, a.yaml then b.yaml, for the service of `lint`."""
    return compile_files(
        {"svc.yaml": SERVICE + "---\n" + GET_ONLY, "a.yaml": first, "b.yaml": second}
    )


def test_mc221_resilience_for_undeclared_service() -> None:
    text = resilience("service: rating\ntimeout: 2s\n")
    diag = only(lint(text), "MC221")
    assert where(diag) == ("res.yaml", *locate(text, "rating\n"))
    assert "service 'rating' is not declared" in diag.message


def test_mc221_silent_for_declared_service() -> None:
    assert findings(lint(resilience("service: shop/ratings\ntimeout: 2s\n")), "MC221") == []


def test_mc223_port_not_of_the_service() -> None:
    text = resilience("service: ratings\nport: 9090\ntimeout: 2s\n")
    diag = only(lint(text), "MC223")
    assert where(diag) == ("res.yaml", *locate(text, "9090"))
    assert "port 9090 is not a port of the service" in diag.message
    assert "9080 (http)" in diag.hint


def test_mc223_target_port_is_explained() -> None:
    diag = only(lint(resilience("service: ratings\nport: 8080\n")), "MC223")
    assert "8080 is a targetPort" in diag.hint


def test_mc223_silent_for_service_port() -> None:
    assert findings(lint(resilience("service: ratings\nport: 9080\n")), "MC223") == []


def test_mc322_two_service_wide_resilience_documents() -> None:
    second = resilience("service: ratings\ntimeout: 3s\n", name="ratings-b")
    compilation = lint_two(resilience("service: ratings\ntimeout: 2s\n", name="ratings-a"), second)
    diag = only(compilation, "MC322")
    assert where(diag) == ("b.yaml", *locate(second, "ratings\n"))
    assert "second Resilience for the whole service" in diag.message
    assert "a.yaml#Resilience/shop/ratings-a" in diag.message


def test_mc322_same_port_twice() -> None:
    second = resilience("service: ratings\nport: 9080\ntimeout: 3s\n", name="b")
    compilation = lint_two(resilience("service: ratings\nport: 9080\n", name="a"), second)
    diag = only(compilation, "MC322")
    assert where(diag) == ("b.yaml", *locate(second, "9080"))
    assert "for port 9080" in diag.message


def test_mc322_silent_for_service_wide_plus_port() -> None:
    compilation = lint_two(
        resilience("service: ratings\ntimeout: 2s\n", name="a"),
        resilience("service: ratings\nport: 9080\ntimeout: 1s\n", name="b"),
    )
    assert findings(compilation, "MC322") == []


def test_mc601_retries_on_5xx_for_service_accepting_post() -> None:
    text = resilience("service: ratings\nretries: {attempts: 2, retryOn: [connect-failure, 5xx]}\n")
    diag = only(lint(text, policy=WITH_POST), "MC601")
    assert where(diag) == ("res.yaml", *locate(text, "5xx"))
    assert "retrying on 5xx may repeat non-idempotent requests" in diag.message
    assert "AccessPolicies allow PATCH, POST" in diag.message
    assert "nonIdempotent: true" in diag.hint


def test_mc601_default_retry_on_and_no_restriction() -> None:
    shadow = GET_ONLY.replace("service: ratings\n", "service: ratings\n  mode: shadow\n")
    text = resilience("service: ratings\nretries: {attempts: 2}\n")
    diag = only(lint(text, policy=shadow), "MC601")
    assert "(Istio's default retryOn)" in diag.message
    assert "no enforced AccessPolicy restricts its methods" in diag.message


def test_mc601_status_code_token_is_after_upstream() -> None:
    text = resilience("service: ratings\nretries: {attempts: 2, retryOn: ['503']}\n")
    diag = only(lint(text, policy=WITH_POST), "MC601")
    assert "retrying on 503" in diag.message


def test_mc601_silent_when_only_the_ingress_gateway_may_post() -> None:
    """The gateway routes with its own VirtualService: these retries never repeat its POSTs."""
    gateway_post = WITH_POST.replace(
        "  - from: [{namespace: shop}]\n    to: {methods: [POST, PATCH]",
        "  - from: [{ingressGateway: true}]\n    to: {methods: [POST, PATCH]",
    )
    assert "ingressGateway" in gateway_post
    text = resilience("service: ratings\nretries: {attempts: 2, retryOn: [5xx]}\n")
    assert findings(lint(text, policy=gateway_post), "MC601") == []
    assert only(lint(text, policy=WITH_POST), "MC601").code == "MC601"


def test_mc601_silent_when_safe() -> None:
    before_upstream = resilience(
        "service: ratings\nretries: {attempts: 2, retryOn: [connect-failure, refused-stream]}\n"
    )
    assert findings(lint(before_upstream, policy=WITH_POST), "MC601") == []
    opted = resilience(
        "service: ratings\nretries: {attempts: 2, retryOn: [5xx], nonIdempotent: true}\n"
    )
    assert findings(lint(opted, policy=WITH_POST), "MC601") == []
    idempotent_only = resilience("service: ratings\nretries: {attempts: 2, retryOn: [5xx]}\n")
    assert findings(lint(idempotent_only, policy=GET_ONLY), "MC601") == []


def test_mc602_tries_exceed_timeout() -> None:
    text = resilience(
        "service: ratings\ntimeout: 1s\nretries: {attempts: 3, perTryTimeout: 500ms}\n"
    )
    diag = only(lint(text), "MC602")
    assert where(diag) == ("res.yaml", *locate(text, "500ms"))
    assert "4 tries × 500ms = 2s exceed the timeout of 1s" in diag.message
    assert "at least 2s" in diag.hint


def test_mc602_silent_when_tries_fit() -> None:
    text = resilience(
        "service: ratings\ntimeout: 2s\nretries: {attempts: 3, perTryTimeout: 500ms}\n"
    )
    assert findings(lint(text), "MC602") == []


def chain_files(*, db_attempts: int, budget: str = "", api_on: str = "5xx") -> dict[str, str]:
    """frontend → api → db, plus db → api (a cycle the walk must survive); api retries on
    `api_on`, db on connect-failure."""

    def service(name: str, calls: str) -> str:
        return (
            f"apiVersion: meshc/v1\nkind: Service\nmetadata: {{name: {name}, namespace: shop}}\n"
            f"spec: {{ports: [{{name: http, port: 80}}], calls: [{calls}]}}\n"
        )

    mesh = f"apiVersion: meshc/v1\nkind: Mesh\nmetadata: {{name: m}}\nspec: {{{budget}}}\n"
    return {
        "mesh.yaml": mesh,
        "svc.yaml": "---\n".join(
            [service("frontend", "api"), service("api", "db"), service("db", "api")]
        ),
        "api.yaml": resilience(f"service: api\nretries: {{attempts: 3, retryOn: [{api_on}]}}\n"),
        "db.yaml": resilience(
            f"service: db\nretries: {{attempts: {db_attempts}, retryOn: [connect-failure]}}\n"
        ),
    }


def test_mc603_retry_amplification_along_chain() -> None:
    files = chain_files(db_attempts=3)
    found = findings(compile_files(files), "MC603")
    # a call into api may be tried 4 times, each of which calls db up to 4 times; the
    # cycle db → api → db ends the walk (db → api alone is 4 attempts, within budget)
    assert [d.message for d in found] == [
        "retry amplification frontend → api → db: 4 × 4 = 16 attempts "
        "exceed the mesh retry budget of 10"
    ]
    assert where(found[0]) == ("db.yaml", *locate(files["db.yaml"], "3,"))
    assert "retryBudget" in found[0].hint


def test_mc603_inner_hops_retrying_only_on_connection_failures_do_not_compound() -> None:
    """api retries only when it cannot connect to api: when db fails, api answers 503 and
    frontend's connect-failure retries do not fire, so nothing multiplies."""
    for api_on in ("connect-failure", "connect-failure, refused-stream"):
        files = chain_files(db_attempts=3, api_on=api_on)
        assert findings(compile_files(files), "MC603") == [], api_on
    # a status code or a gRPC status is a failed answer: it compounds
    for api_on in ("'503'", "unavailable", "gateway-error"):
        found = findings(compile_files(chain_files(db_attempts=3, api_on=api_on)), "MC603")
        assert len(found) == 1, api_on
        assert found[0].message.startswith("retry amplification frontend → api → db: 4 × 4 = 16")


def test_mc603_silent_within_budget() -> None:
    files = chain_files(db_attempts=1)  # frontend → api → db: 4 × 2 = 8 ≤ 10
    assert findings(compile_files(files), "MC603") == []
    files = chain_files(db_attempts=3, budget="retryBudget: 20")
    assert findings(compile_files(files), "MC603") == []


def test_mc604_unknown_retry_on_tokens() -> None:
    text = resilience(
        "service: ratings\nretries: {attempts: 1, retryOn: [5XX, connect-failures, '503']}\n"
    )
    found = findings(lint(text), "MC604")
    assert {d.message: (where(d), d.hint) for d in found} == {
        "shop/ratings: unknown retryOn condition '5XX'": (
            ("res.yaml", *locate(text, "5XX")),
            "did you mean '5xx'?",
        ),
        "shop/ratings: unknown retryOn condition 'connect-failures'": (
            ("res.yaml", *locate(text, "connect-failures")),
            "did you mean 'connect-failure'?",
        ),
    }


def test_mc604_comma_joined_tokens() -> None:
    text = resilience("service: ratings\nretries: {attempts: 1, retryOn: ['5xx,reset']}\n")
    diag = only(lint(text), "MC604")
    assert "one condition per list item: [5xx, reset]" in diag.hint


def test_mc604_silent_for_valid_tokens() -> None:
    text = resilience(
        "service: ratings\n"
        "retries: {attempts: 1, retryOn: [5xx, gateway-error, unavailable, '429']}\n"
    )
    assert findings(lint(text), "MC604") == []


def test_mc605_durations_below_1ms() -> None:
    text = resilience(
        """\
        service: ratings
        timeout: 0s
        retries: {attempts: 1, perTryTimeout: 0.5ms}
        circuitBreaker: {consecutive5xx: 5, baseEjectionTime: 30s}
        """
    )
    found = findings(lint(text), "MC605")
    assert {d.message: where(d) for d in found} == {
        "Resilience shop/ratings: timeout 0s is below 1ms": ("res.yaml", *locate(text, "0s")),
        "Resilience shop/ratings: retries.perTryTimeout 0.5ms is below 1ms": (
            "res.yaml",
            *locate(text, "0.5ms"),
        ),
    }


def test_mc605_rollout_step_durations() -> None:
    rollout = (
        "apiVersion: meshc/v1\nkind: Rollout\nmetadata: {name: ratings, namespace: shop}\n"
        "spec:\n  service: ratings\n  stable: v1\n  canary: v1\n"
        "  steps: [{weight: 50, pause: 0ms, analysis: {maxLatency: 0s}}, {weight: 100}]\n"
    )
    compilation = compile_files({"svc.yaml": SERVICE, "r.yaml": rollout})
    messages = sorted(d.message for d in findings(compilation, "MC605"))
    assert messages == [
        "Rollout shop/ratings: steps[0].analysis.maxLatency 0s is below 1ms",
        "Rollout shop/ratings: steps[0].pause 0ms is below 1ms",
    ]


def test_mc605_silent_for_real_durations_and_session_cookie() -> None:
    text = resilience(
        """\
        service: ratings
        timeout: 1ms
        circuitBreaker: {interval: 10s, baseEjectionTime: 30s}
        loadBalancer: {consistentHash: {cookie: {name: user, ttl: 0s}}}
        """
    )
    assert findings(lint(text), "MC605") == []


def test_mc606_percentages_outside_0_100() -> None:
    text = resilience(
        "service: ratings\ncircuitBreaker: {consecutive5xx: 5, maxEjectionPercent: 150}\n"
    )
    diag = only(lint(text), "MC606")
    assert where(diag) == ("res.yaml", *locate(text, "150"))
    assert "maxEjectionPercent 150 is outside 0-100" in diag.message
    rollout = (
        "apiVersion: meshc/v1\nkind: Rollout\nmetadata: {name: ratings, namespace: shop}\n"
        "spec: {service: ratings, stable: v1, canary: v1,"
        " steps: [{weight: 100, analysis: {successRate: 995}}]}\n"
    )
    compilation = compile_files({"svc.yaml": SERVICE, "r.yaml": rollout})
    diag = only(compilation, "MC606")
    assert where(diag) == ("r.yaml", *locate(rollout, "995"))
    assert (
        diag.message == "Rollout shop/ratings: steps[0].analysis.successRate 995 is outside 0-100"
    )


def test_mc606_silent_in_range() -> None:
    text = resilience("service: ratings\ncircuitBreaker: {maxEjectionPercent: 100}\n")
    assert findings(lint(text), "MC606") == []


def test_mc607_local_rate_limit_has_no_istio_form() -> None:
    text = resilience("service: ratings\nlocalRateLimit: {requests: 100, per: 1s}\n")
    diag = only(lint(text), "MC607")
    assert where(diag) == ("res.yaml", *locate(text, "localRateLimit"))
    assert "used by the Envoy target only; on Istio it is not applied" in diag.message
    assert diag.severity.label == "warning"


def test_mc607_silent_without_local_rate_limit() -> None:
    text = resilience("service: ratings\ncircuitBreaker: {maxRequests: 100}\n")
    assert findings(lint(text), "MC607") == []


UNSET = "(Istio reads 0 as unset, i.e. unlimited)"


def test_mc608_non_positive_counts() -> None:
    text = resilience(
        """\
        service: ratings
        retries: {attempts: -1}
        circuitBreaker: {maxConnections: 0, maxRetries: 0, consecutive5xx: -2}
        """
    )
    found = findings(lint(text), "MC608")
    assert {d.message: where(d) for d in found} == {
        "shop/ratings: retries.attempts -1 is negative": ("res.yaml", *locate(text, "-1")),
        f"shop/ratings: circuitBreaker.maxConnections 0 is below 1 {UNSET}": (
            "res.yaml",
            *locate(text, "0,"),
        ),
        f"shop/ratings: circuitBreaker.maxRetries 0 is below 1 {UNSET}": (
            "res.yaml",
            *locate(text, "0,", 2),
        ),
        "shop/ratings: circuitBreaker.consecutive5xx -2 is negative": (
            "res.yaml",
            *locate(text, "-2"),
        ),
    }


def test_mc608_silent_for_meaningful_counts() -> None:
    text = resilience(
        """\
        service: ratings
        retries: {attempts: 0}
        circuitBreaker: {maxConnections: 1, maxRequestsPerConnection: 0, consecutive5xx: 0,
                         consecutiveGatewayErrors: 3}
        """
    )
    assert findings(lint(text), "MC608") == []


def test_mc603_reports_the_shortest_chain_only() -> None:
    files = chain_files(db_attempts=3)
    edge = (
        "apiVersion: meshc/v1\nkind: Service\nmetadata: {name: edge, namespace: shop}\n"
        "spec: {ports: [{name: http, port: 80}], calls: [frontend]}\n"
    )
    files["edge.yaml"] = edge
    files["frontend.yaml"] = resilience("service: frontend\nretries: {attempts: 1}\n")
    found = findings(compile_files(files), "MC603")
    # edge → frontend → api → db (2 × 4 × 4) contains frontend → api → db (already over):
    # only the shortest chain is reported, at the hop that crosses the budget
    assert [d.message for d in found] == [
        "retry amplification frontend → api → db: 4 × 4 = 16 attempts "
        "exceed the mesh retry budget of 10"
    ]


def test_mc603_chains_ending_at_one_hop_are_reported_once() -> None:
    files = chain_files(db_attempts=3)
    files["mobile.yaml"] = (
        "apiVersion: meshc/v1\nkind: Service\nmetadata: {name: mobile, namespace: shop}\n"
        "spec: {ports: [{name: http, port: 80}], calls: [api]}\n"
    )
    diag = only(compile_files(files), "MC603")
    assert diag.message == (
        "retry amplification frontend → api → db: 4 × 4 = 16 attempts "
        "exceed the mesh retry budget of 10 (1 more chain(s) end here)"
    )


RETRY_5XX = "service: ratings\nretries: {attempts: 2, retryOn: [5xx]}\n"


def test_mc601_methods_denied_to_everyone_are_not_accepted() -> None:
    deny_post = WITH_POST + (
        "  - from: [{service: '*'}]\n    to: {methods: [POST, PATCH]}\n    action: deny\n"
    )
    assert findings(lint(resilience(RETRY_5XX), policy=deny_post), "MC601") == []
    # a deny limited to one path leaves POST reachable elsewhere
    deny_one_path = WITH_POST + (
        "  - from: [{service: '*'}]\n    to: {methods: [POST], paths: [/admin]}\n    action: deny\n"
    )
    diag = only(lint(resilience(RETRY_5XX), policy=deny_one_path), "MC601")
    assert "allow PATCH, POST" in diag.message


def test_mc601_no_policy_follows_the_mesh_default() -> None:
    # default deny and no AccessPolicy: nothing reaches the service, nothing to repeat
    files = {"svc.yaml": SERVICE, "res.yaml": resilience(RETRY_5XX)}
    assert findings(compile_files(files), "MC601") == []
    allow_mesh = (
        "apiVersion: meshc/v1\nkind: Mesh\nmetadata: {name: m}\nspec: {defaultAction: allow}\n"
    )
    diag = only(compile_files({**files, "mesh.yaml": allow_mesh}), "MC601")
    assert "no enforced AccessPolicy restricts its methods" in diag.message


def test_mc610_durations_beyond_go_duration() -> None:
    """Found by tests/lower/test_lowering_fuzz.py: Istio and the API server parse durations
    into Go's int64 nanoseconds, so 106752d cannot apply."""
    text = resilience(
        """\
        service: ratings
        timeout: 106752d
        circuitBreaker: {consecutive5xx: 5, baseEjectionTime: 106751d}
        """
    )
    found = only(lint(text), "MC610")
    assert found.message == (
        "Resilience shop/ratings: timeout 106752d is longer than a Go duration holds (2562047h)"
    )
    assert where(found) == ("res.yaml", *locate(text, "106752d"))
    assert found.hint == "write a duration below 106751d, or leave the field out"


def test_mc610_rollout_pause() -> None:
    rollout = (
        "apiVersion: meshc/v1\nkind: Rollout\nmetadata: {name: ratings, namespace: shop}\n"
        "spec:\n  service: ratings\n  stable: v1\n  canary: v1\n"
        "  steps: [{weight: 50, pause: 200000d}, {weight: 100}]\n"
    )
    compilation = compile_files({"svc.yaml": SERVICE, "r.yaml": rollout})
    assert [d.message for d in findings(compilation, "MC610")] == [
        "Rollout shop/ratings: steps[0].pause 200000d is longer than a Go duration holds (2562047h)"
    ]


def test_mc610_silent_up_to_the_go_maximum() -> None:
    text = resilience("service: ratings\ntimeout: 106751d\n")
    assert findings(lint(text), "MC610") == []


def test_mc611_counts_beyond_istio_int32_and_uint32() -> None:
    """Found by the lowering fuzzer: consecutive5xx 4294967296 fails the CRD's uint32
    maximum; maxConnections 2147483648 fails its int32 field."""
    text = resilience(
        """\
        service: ratings
        retries: {attempts: 2147483648}
        circuitBreaker: {maxConnections: 2147483648, consecutive5xx: 4294967296,
                         consecutiveGatewayErrors: 4294967295, maxRetries: 2147483647}
        """
    )
    found = findings(lint(text), "MC611")
    assert {d.message: where(d) for d in found} == {
        "shop/ratings: retries.attempts 2147483648 is larger than Istio's field holds "
        "(2147483647)": ("res.yaml", *locate(text, "2147483648")),
        "shop/ratings: circuitBreaker.maxConnections 2147483648 is larger than Istio's "
        "field holds (2147483647)": ("res.yaml", *locate(text, "2147483648", 2)),
        "shop/ratings: circuitBreaker.consecutive5xx 4294967296 is larger than Istio's "
        "field holds (4294967295)": ("res.yaml", *locate(text, "4294967296")),
    }
    assert {d.hint for d in found} == {
        "write at most 2147483647, or leave the field out",
        "write at most 4294967295, or leave the field out",
    }


def test_mc611_silent_at_the_bounds() -> None:
    text = resilience(
        "service: ratings\n"
        "circuitBreaker: {maxConnections: 2147483647, consecutive5xx: 4294967295}\n"
    )
    assert findings(lint(text), "MC611") == []
