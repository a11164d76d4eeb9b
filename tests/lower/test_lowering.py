"""Explicit expectations for each emitted object (the golden files show whole outputs;
these name the behaviours the intent language promises, one per test)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from compiler.api import compile_tree
from compiler.lower import LoweringRefused, lower
from compiler.lower.istio.common import istio_duration
from tests.helpers import NOW, compile_files, tree
from tests.lower.support import BOOKINFO, RICH, objects, render_dir, render_files

SERVICE = """\
apiVersion: meshc/v1
kind: Service
metadata: {{name: {name}, namespace: {ns}}}
spec:
  ports: [{{name: http, port: 80, targetPort: 8080, protocol: http}}]
  versions: {{v1: {{labels: {{version: v1}}}}, v2: {{labels: {{version: v2}}}}}}
  calls: [{calls}]
"""


def service(name: str, ns: str = "app", calls: str = "") -> str:
    return SERVICE.format(name=name, ns=ns, calls=calls)


def mesh(spec: str = "{}") -> str:
    return f"apiVersion: meshc/v1\nkind: Mesh\nmetadata: {{name: m}}\nspec: {spec}\n"


def meta(obj: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = obj["metadata"]
    return result


# --- ownership and determinism -------------------------------------------------------


def test_every_object_carries_ownership_labels_and_its_source_document() -> None:
    artifacts = render_dir(BOOKINFO)
    for key, obj in artifacts:
        labels = meta(obj)["labels"]
        assert labels == {
            "app.kubernetes.io/managed-by": "meshc",
            "app.kubernetes.io/part-of": "bookinfo-mesh",
        }
        source = meta(obj)["annotations"]["meshc.io/source"]
        assert "#" in source and source.split("#")[1].count("/") == 2, f"{key}: {source}"
    sources = {str(k): meta(o)["annotations"]["meshc.io/source"] for k, o in artifacts}
    assert (
        sources["DestinationRule.networking.istio.io/bookinfo/reviews"]
        == "reviews.yaml#Service/bookinfo/reviews"
    )
    assert (
        sources["VirtualService.networking.istio.io/bookinfo/reviews"]
        == "reviews.yaml#Rollout/bookinfo/reviews"
    )
    assert (
        sources["VirtualService.networking.istio.io/bookinfo/ratings"]
        == "ratings.yaml#Resilience/bookinfo/ratings"
    )


def test_no_revision_line_numbers_or_secrets_in_output() -> None:
    artifacts = render_dir(RICH)
    for _, obj in artifacts:
        assert obj["kind"] != "Secret"
        for name in list(meta(obj).get("annotations", {})) + list(meta(obj).get("labels", {})):
            assert "revision" not in name and "line" not in name


def test_lowering_refuses_a_tree_with_errors() -> None:
    compilation = compile_files({"a.yaml": service("a") + "---\n" + service("a")})
    with pytest.raises(LoweringRefused) as refused:
        lower(compilation)
    assert refused.value.diagnostics, "the blocking diagnostics travel with the refusal"
    assert "does not compile" in str(refused.value)


def test_unknown_target_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="target 'linkerd': unknown; choose one of istio"):
        lower(compile_files({"a.yaml": service("a")}), target="linkerd")


@pytest.mark.parametrize(
    ("written", "istio"),
    [
        ("30d", "720h"),
        ("1m30s", "90s"),
        ("500ms", "500ms"),
        ("2s", "2s"),
        ("5m", "5m"),
        ("1.5s", "1500ms"),
        ("90m", "90m"),
        ("2h", "2h"),
        ("1h30m", "90m"),
        ("0.5ms", "0.5ms"),
    ],
)
def test_durations_take_istio_forms(written: str, istio: str) -> None:
    assert istio_duration(written) == istio


# --- Mesh ---------------------------------------------------------------------------


def test_mesh_wide_strict_peer_authentication_in_the_root_namespace() -> None:
    artifacts = render_files({"m.yaml": mesh("{rootNamespace: mesh-root}"), "a.yaml": service("a")})
    pa = objects(artifacts, "PeerAuthentication")
    assert list(pa) == ["mesh-root/default"]
    assert pa["mesh-root/default"]["spec"] == {"mtls": {"mode": "STRICT"}}


def test_allow_nothing_per_namespace_with_services_only_when_default_deny() -> None:
    files = {"a.yaml": service("a", "one"), "b.yaml": service("b", "two")}
    deny = objects(render_files({**files, "m.yaml": mesh()}), "AuthorizationPolicy")
    assert {k: v["spec"] for k, v in deny.items()} == {
        "one/meshc-allow-nothing": {},
        "two/meshc-allow-nothing": {},
    }
    allow = objects(
        render_files({**files, "m.yaml": mesh("{defaultAction: allow}")}), "AuthorizationPolicy"
    )
    assert allow == {}


def test_live_permissive_exception_is_lowered_and_an_expired_one_is_not() -> None:
    spec = (
        "\n  mtls:\n    exceptions:\n"
        f"    - {{service: app/old, until: '{(NOW + timedelta(days=1)).isoformat()}', "
        "reason: migrating}\n"
        f"    - {{service: app/gone, until: '{(NOW - timedelta(seconds=1)).isoformat()}', "
        "reason: done}"
    )
    files = {"m.yaml": mesh(spec), "a.yaml": service("old") + "---\n" + service("gone")}
    pa = objects(render_files(files), "PeerAuthentication")
    assert sorted(pa) == ["app/old-permissive", "istio-system/default"]
    assert pa["app/old-permissive"]["spec"] == {
        "selector": {"matchLabels": {"app": "old"}},
        "mtls": {"mode": "PERMISSIVE"},
    }
    later = compile_tree(tree(files, with_mesh=False), now=NOW + timedelta(days=2))
    assert sorted(objects(lower(later), "PeerAuthentication")) == ["istio-system/default"]


# --- Service ------------------------------------------------------------------------


def test_destination_rule_subsets_and_mutual_tls() -> None:
    dr = objects(render_files({"a.yaml": service("a")}), "DestinationRule")["app/a"]
    assert dr["apiVersion"] == "networking.istio.io/v1"
    assert dr["spec"]["host"] == "a.app.svc.cluster.local"
    assert dr["spec"]["subsets"] == [
        {"name": "v1", "labels": {"app": "a", "version": "v1"}},
        {"name": "v2", "labels": {"app": "a", "version": "v2"}},
    ]
    assert dr["spec"]["trafficPolicy"] == {"tls": {"mode": "ISTIO_MUTUAL"}}


def test_resilience_becomes_traffic_policy_and_port_level_settings() -> None:
    dr = objects(render_dir(RICH), "DestinationRule")["shop/catalog"]["spec"]["trafficPolicy"]
    assert dr["connectionPool"] == {
        "tcp": {"maxConnections": 200},
        "http": {
            "http1MaxPendingRequests": 20,
            "http2MaxRequests": 500,
            "maxRequestsPerConnection": 10,
            "maxRetries": 3,
        },
    }
    assert dr["outlierDetection"] == {
        "consecutive5xxErrors": 7,
        "consecutiveGatewayErrors": 3,
        "interval": "30s",
        "baseEjectionTime": "1m",
        "maxEjectionPercent": 30,
    }
    assert dr["loadBalancer"] == {"consistentHash": {"httpHeaderName": "x-user"}}
    assert dr["portLevelSettings"] == [
        {
            "port": {"number": 9090},
            "tls": {"mode": "ISTIO_MUTUAL"},
            "connectionPool": {"http": {"http2MaxRequests": 1000}},
            "loadBalancer": {
                "consistentHash": {"httpCookie": {"name": "session", "ttl": "24h", "path": "/"}}
            },
        }
    ]
    billing = objects(render_dir(RICH), "DestinationRule")["legacy/billing"]["spec"][
        "trafficPolicy"
    ]
    assert billing["loadBalancer"] == {"consistentHash": {"useSourceIp": True}}
    frontend = objects(render_dir(RICH), "DestinationRule")["shop/frontend"]["spec"][
        "trafficPolicy"
    ]
    assert frontend["loadBalancer"] == {"simple": "RANDOM"}


def test_sidecar_egress_lists_only_called_services_and_the_root_namespace() -> None:
    sidecars = objects(render_dir(RICH), "Sidecar")
    assert sidecars["shop/frontend"]["spec"] == {
        "workloadSelector": {"labels": {"app": "frontend"}},
        "egress": [
            {
                "hosts": [
                    "istio-system/*",
                    "legacy/billing.legacy.svc.cluster.local",
                    "shop/cart.shop.svc.cluster.local",
                    "shop/catalog.shop.svc.cluster.local",
                ]
            }
        ],
    }
    assert sidecars["shop/catalog"]["spec"]["egress"] == [{"hosts": ["istio-system/*"]}]
    assert sidecars["legacy/billing"]["spec"]["workloadSelector"] == {
        "labels": {"app": "billing", "tier": "backend"}
    }


# --- AccessPolicy -------------------------------------------------------------------


def test_access_policy_lowers_to_allow_deny_and_audit() -> None:
    policies = objects(render_dir(RICH), "AuthorizationPolicy")
    allow = policies["shop/catalog-allow"]["spec"]
    assert allow["action"] == "ALLOW"
    assert allow["selector"] == {"matchLabels": {"app": "catalog"}}
    assert allow["rules"][0] == {
        "from": [
            {
                "source": {
                    "principals": [
                        "example.org/ns/istio-system/sa/istio-ingressgateway-service-account",
                        "example.org/ns/shop/sa/frontend",
                    ]
                }
            }
        ],
        "to": [
            {
                "operation": {
                    "methods": ["GET", "HEAD"],
                    "paths": ["*.json", "/catalog/*"],
                    "ports": ["8080"],
                }
            }
        ],
    }
    # a namespace source, service port 9090 lowered to its target port 9091, a header condition
    assert allow["rules"][1] == {
        "from": [{"source": {"namespaces": ["ops"]}}],
        "to": [{"operation": {"ports": ["9091"]}}],
        "when": [{"key": "request.headers[x-debug]", "values": ["1", "yes"]}],
    }
    audit = policies["shop/catalog-audit"]["spec"]
    assert audit["action"] == "AUDIT" and audit["rules"] == [allow["rules"][1]]
    deny = policies["shop/catalog-deny"]["spec"]
    assert deny == {
        "selector": {"matchLabels": {"app": "catalog"}},
        "action": "DENY",
        "rules": [
            {
                "from": [{"source": {"principals": ["example.org/ns/legacy/sa/billing"]}}],
                "to": [{"operation": {"paths": ["/admin*"]}}],
            }
        ],
    }
    # a policy from another namespace lands in the service's namespace, prefixed by its own
    probe = policies["shop/ops.catalog-probe-allow"]
    assert probe["spec"]["rules"][0]["from"] == [
        {"source": {"principals": ["example.org/ns/ops/sa/prober"]}}
    ]
    assert (
        meta(probe)["annotations"]["meshc.io/source"] == "ops.yaml#AccessPolicy/ops/catalog-probe"
    )


def test_principals_use_istio_form_for_spiffe_ids_and_wildcards() -> None:
    billing = objects(render_dir(RICH), "AuthorizationPolicy")["legacy/billing-allow"]["spec"][
        "rules"
    ]
    assert billing[0]["from"] == [
        {
            "source": {
                "principals": ["example.org/ns/shop/sa/cart", "example.org/ns/shop/sa/frontend"]
            }
        }
    ]
    assert billing[1]["from"] == [{"source": {"principals": ["*"]}}]
    for rule in billing:
        for entry in rule["from"]:
            assert not any(p.startswith("spiffe://") for p in entry["source"].get("principals", []))


def test_shadow_mode_is_workload_allow_all_plus_dry_run_policy() -> None:
    policies = objects(render_dir(RICH), "AuthorizationPolicy")
    allow_all = policies["shop/cart-shadow-allow-all"]
    assert allow_all["spec"] == {
        "selector": {"matchLabels": {"app": "cart"}},
        "action": "ALLOW",
        "rules": [{"from": [{"source": {"principals": ["*"]}}]}],
    }
    assert "istio.io/dry-run" not in meta(allow_all)["annotations"]
    dry = policies["shop/cart-allow"]
    assert meta(dry)["annotations"]["istio.io/dry-run"] == "true"
    assert dry["spec"]["rules"][0]["to"] == [
        {"operation": {"methods": ["GET", "POST"], "paths": ["/cart*"]}}
    ]
    # enforced policies are never dry-run
    assert "istio.io/dry-run" not in meta(policies["shop/catalog-allow"])["annotations"]


def test_shadow_policy_beside_an_enforced_one_adds_no_allow_all() -> None:
    files = {
        "a.yaml": service("a") + "---\n" + service("b"),
        "p.yaml": """\
apiVersion: meshc/v1
kind: AccessPolicy
metadata: {name: strict, namespace: app}
spec: {service: a, rules: [{from: [{service: b}], to: {methods: [GET]}}]}
---
apiVersion: meshc/v1
kind: AccessPolicy
metadata: {name: trial, namespace: app}
spec: {service: a, mode: shadow, rules: [{from: [{service: b}], to: {methods: [GET], paths: [/x]}}]}
""",
    }
    names = sorted(objects(render_files(files), "AuthorizationPolicy"))
    assert names == ["app/meshc-allow-nothing", "app/strict-allow", "app/trial-allow"]


def test_network_policy_admits_callers_gateway_and_monitoring_on_target_ports() -> None:
    np = objects(render_dir(RICH), "NetworkPolicy")
    assert "shop/cart" not in np, (
        "shadow-only services get no NetworkPolicy (live decision is allow-all)"
    )
    catalog = np["shop/catalog"]
    assert catalog["apiVersion"] == "networking.k8s.io/v1"
    spec = catalog["spec"]
    assert spec["podSelector"] == {"matchLabels": {"app": "catalog"}}
    assert spec["policyTypes"] == ["Ingress"]

    def pods(app: str, ns: str) -> dict[str, Any]:
        return {
            "podSelector": {"matchLabels": app_labels(app)},
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
        }

    def app_labels(app: str) -> dict[str, str]:
        return {"istio": "ingressgateway"} if app == "gateway" else {"app": app}

    assert spec["ingress"] == [
        {
            "from": [pods("gateway", "istio-system"), pods("frontend", "shop")],
            "ports": [{"port": 8080, "protocol": "TCP"}],
        },
        {
            "from": [pods("prober", "ops")],
            "ports": [{"port": 8080, "protocol": "TCP"}, {"port": 9091, "protocol": "TCP"}],
        },
        {
            "from": [
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ops"}}}
            ],
            "ports": [{"port": 9091, "protocol": "TCP"}],
        },
        {
            "from": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "observability"}
                    }
                }
            ],
            "ports": [{"port": 15020, "protocol": "TCP"}, {"port": 15090, "protocol": "TCP"}],
        },
    ]
    # `*` admits any pod (and subsumes the named callers on the same ports)
    billing = np["legacy/billing"]["spec"]["ingress"]
    assert billing[0] == {
        "from": [{"namespaceSelector": {}}],
        "ports": [{"port": 8443, "protocol": "TCP"}],
    }


def test_network_policy_identity_source_selects_the_pods_running_as_it() -> None:
    files = {
        "a.yaml": service("a") + "---\n" + service("b", "other") + "---\n" + service("c"),
        "p.yaml": "apiVersion: meshc/v1\nkind: AccessPolicy\nmetadata: {name: a, namespace: app}\n"
        "spec: {service: a, rules: [{from: [{identity: other/b}, {identity: app/nobody}]}]}\n",
    }
    ingress = objects(render_files(files), "NetworkPolicy")["app/a"]["spec"]["ingress"]
    assert ingress[0]["from"] == [
        # no service runs as app/nobody: its whole namespace (L3 is wider; the L7 policy is exact)
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "app"}}},
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "other"}},
            "podSelector": {"matchLabels": {"app": "b"}},
        },
    ]
    assert ingress[0]["ports"] == [{"port": 8080, "protocol": "TCP"}]


def test_network_policies_can_be_switched_off() -> None:
    files = {
        "m.yaml": mesh("{networkPolicy: {enabled: false}}"),
        "a.yaml": service("a") + "---\n" + service("b"),
        "p.yaml": "apiVersion: meshc/v1\nkind: AccessPolicy\nmetadata: {name: a, namespace: app}\n"
        "spec: {service: a, rules: [{from: [{service: b}]}]}\n",
    }
    assert objects(render_files(files), "NetworkPolicy") == {}
    assert "app/a-allow" in objects(render_files(files), "AuthorizationPolicy")


# --- Rollout + Resilience -------------------------------------------------------------


def test_one_virtual_service_per_host_with_matches_first_then_the_split() -> None:
    vs = objects(render_dir(BOOKINFO), "VirtualService")["bookinfo/reviews"]["spec"]
    assert vs["hosts"] == ["reviews.bookinfo.svc.cluster.local"]
    assert [r["name"] for r in vs["http"]] == ["match-0", "default"]
    assert vs["http"][0]["match"] == [{"headers": {"end-user": {"exact": "jason"}}}]
    assert vs["http"][0]["route"] == [
        {"destination": {"host": "reviews.bookinfo.svc.cluster.local", "subset": "v2"}}
    ]
    assert vs["http"][1]["route"] == [
        {
            "destination": {"host": "reviews.bookinfo.svc.cluster.local", "subset": "v1"},
            "weight": 90,
        },
        {
            "destination": {"host": "reviews.bookinfo.svc.cluster.local", "subset": "v3"},
            "weight": 10,
        },
    ]
    assert "match" not in vs["http"][1]


def test_no_virtual_service_without_rollout_or_timeout_or_retries() -> None:
    names = sorted(objects(render_dir(RICH), "VirtualService"))
    # billing has a load balancer only: no VirtualService
    assert names == ["legacy/ledger", "legacy/stock", "shop/cart", "shop/catalog", "shop/frontend"]


def test_resilience_timeout_and_retries_on_every_route() -> None:
    vs = objects(render_dir(BOOKINFO), "VirtualService")["bookinfo/ratings"]["spec"]
    assert vs["http"] == [
        {
            "name": "default",
            "route": [{"destination": {"host": "ratings.bookinfo.svc.cluster.local"}}],
            "timeout": "2s",
            "retries": {
                "attempts": 3,
                "perTryTimeout": "500ms",
                "retryOn": "5xx,reset,connect-failure",
            },
        }
    ]


@pytest.mark.parametrize(("step", "canary"), [(None, 10), (0, 10), (1, 50), (2, 100), (9, 100)])
def test_progressive_rollout_uses_the_current_step(step: int | None, canary: int) -> None:
    state = {} if step is None else {"shop/catalog": step}
    vs = objects(render_dir(RICH, state=state), "VirtualService")["shop/catalog"]["spec"]
    default = next(r for r in vs["http"] if r["name"] == "default")
    expected = []
    if canary < 100:
        expected.append(
            {
                "destination": {"host": "catalog.shop.svc.cluster.local", "subset": "v1"},
                "weight": 100 - canary,
            }
        )
    expected.append(
        {
            "destination": {"host": "catalog.shop.svc.cluster.local", "subset": "v2"},
            "weight": canary,
        }
    )
    assert default["route"] == expected
    assert default["mirror"] == {"host": "catalog.shop.svc.cluster.local", "subset": "v3"}
    assert default["mirrorPercentage"] == {"value": 5.0}
    assert default["timeout"] == "90s"
    assert default["retries"] == {
        "attempts": 2,
        "perTryTimeout": "30s",
        "retryOn": "5xx,gateway-error",
    }


def test_port_scoped_resilience_gets_its_own_routes_before_the_general_ones() -> None:
    vs = objects(render_dir(RICH), "VirtualService")["shop/catalog"]["spec"]["http"]
    assert [r["name"] for r in vs] == [
        "port-9090-match-0",
        "port-9090-match-1",
        "port-9090-default",
        "match-0",
        "match-1",
        "default",
    ]
    assert vs[2]["match"] == [{"port": 9090}]
    assert vs[2]["timeout"] == "500ms"
    assert vs[2]["retries"]["attempts"] == 2, (
        "fields the port does not set come from the service-wide Resilience"
    )
    assert vs[0]["match"] == [{"headers": {"x-beta": {"exact": "true"}}, "port": 9090}]


def test_cookie_matches_become_a_cookie_header_regex() -> None:
    import re

    vs = objects(render_dir(RICH), "VirtualService")["shop/catalog"]["spec"]["http"]
    pattern = vs[4]["match"][0]["headers"]["cookie"]["regex"]
    assert re.fullmatch(pattern, "group=beta-7")
    assert re.fullmatch(pattern, "a=1; group=beta; b=2")
    assert not re.fullmatch(pattern, "a=1; group=alpha")
    assert not re.fullmatch(pattern, "xgroup=beta")


def test_generated_mesh_has_one_virtual_service_per_host_and_unique_names() -> None:
    from tests.lower.generate import generated_mesh

    compilation = compile_files(generated_mesh(40))
    artifacts = lower(compilation)
    hosts = [
        h for _, vs in objects(artifacts, "VirtualService").items() for h in vs["spec"]["hosts"]
    ]
    assert len(hosts) == len(set(hosts)) > 0
    rollouts = sum(1 for i in range(40) if i % 3 == 0)
    assert len(objects(artifacts, "VirtualService")) >= rollouts
    assert len(objects(artifacts, "Sidecar")) == len(objects(artifacts, "DestinationRule")) == 40


def test_a_tree_without_a_mesh_document_uses_the_defaults() -> None:
    compilation = compile_files({"a.yaml": service("a")}, with_mesh=False)
    if not compilation.ok:  # should lint come to require a Mesh, lowering must refuse
        with pytest.raises(LoweringRefused):
            lower(compilation)
        return
    pa = objects(lower(compilation), "PeerAuthentication")["istio-system/default"]
    assert pa["metadata"]["annotations"]["meshc.io/source"] == "(mesh defaults)"
    assert pa["metadata"]["labels"]["app.kubernetes.io/part-of"] == "mesh"


def test_tcp_ports_get_a_weighted_tcp_route_only() -> None:
    vs = objects(render_dir(RICH), "VirtualService")
    ledger = vs["legacy/ledger"]["spec"]
    assert ledger == {
        "hosts": ["ledger.legacy.svc.cluster.local"],
        "tcp": [
            {
                "route": [
                    {
                        "destination": {
                            "host": "ledger.legacy.svc.cluster.local",
                            "subset": "pg14",
                        },
                        "weight": 75,
                    },
                    {
                        "destination": {
                            "host": "ledger.legacy.svc.cluster.local",
                            "subset": "pg16",
                        },
                        "weight": 25,
                    },
                ]
            }
        ],
    }
    stock = vs["legacy/stock"]["spec"]
    assert [r["name"] for r in stock["http"]] == ["default"]
    assert stock["tcp"] == [
        {
            "match": [{"port": 7000}],
            "route": [
                {
                    "destination": {"host": "stock.legacy.svc.cluster.local", "subset": "a"},
                    "weight": 60,
                },
                {
                    "destination": {"host": "stock.legacy.svc.cluster.local", "subset": "b"},
                    "weight": 40,
                },
            ],
        }
    ]


def test_header_names_are_lowercased_as_istio_asks() -> None:
    files = {
        "a.yaml": service("a") + "---\n" + service("b"),
        "p.yaml": """\
apiVersion: meshc/v1
kind: AccessPolicy
metadata: {name: a, namespace: app}
spec: {service: a, rules: [{from: [{service: b}], headers: {X-Tenant: [blue]}}]}
---
apiVersion: meshc/v1
kind: Rollout
metadata: {name: a, namespace: app}
spec: {service: a, stable: v1, match: [{headers: {X-Canary: {exact: "on"}}, version: v2}]}
""",
    }
    artifacts = render_files(files)
    rule = objects(artifacts, "AuthorizationPolicy")["app/a-allow"]["spec"]["rules"][0]
    assert rule["when"] == [{"key": "request.headers[x-tenant]", "values": ["blue"]}]
    vs = objects(artifacts, "VirtualService")["app/a"]["spec"]["http"][0]
    assert vs["match"] == [{"headers": {"x-canary": {"exact": "on"}}}]
