"""Lint rules about the mesh's ingress gateways: a gateway meshc's default deny would close,
a source naming a gateway the Mesh does not have, and Rollout splits gateway traffic would
bypass."""

from __future__ import annotations

from collections.abc import Iterable

from compiler.diagnostics import Severity, Span
from compiler.kinds.access_policy.checks import subject_sources
from compiler.kinds.mesh.model import MeshSpec, ResolvedGateway
from compiler.lint.registry import Finding, LintContext, rule, subject_rule
from compiler.lint.subjects import Subject, SubjectContext, subject_rollouts
from compiler.model.access import gateways_named
from compiler.model.gateways import (
    gateway_http_ports,
    gateways_calling,
    split_binding,
    under_default_deny,
)
from compiler.model.mesh import MeshModel
from compiler.model.traffic import current_rollout


def gateway_path(settings: MeshSpec, index: int) -> tuple[str | int, ...]:
    """Where the `index`-th gateway is written: `ingressGateway` or `ingressGateway[i]`."""
    if isinstance(settings.ingress_gateway, list):
        return ("ingressGateway", index)
    return ("ingressGateway",)


def gateway_span(model: MeshModel, index: int, *field: str) -> Span | None:
    """The span of a gateway's field in the Mesh (None without a Mesh document)."""
    if model.mesh is None:
        return None
    return model.mesh.span(*gateway_path(model.settings, index), *field)


def _describe(gateway: ResolvedGateway) -> str:
    form = "Gateway API gateway" if gateway.api == "gateway-api" else "ingress gateway"
    return f"{form} {gateway.name!r} ({gateway.namespace})"


@rule("MC230", "gateway-closed-by-default-deny", Severity.ERROR)
def gateway_closed_by_default_deny(ctx: LintContext) -> Iterable[Finding]:
    """An ingress gateway sits under meshc's default deny and has no listener port to allow.

    **What it does.** With `defaultAction: deny`, meshc writes an allow-nothing
    AuthorizationPolicy (`meshc-allow-nothing`) in every namespace with services, and
    beside it, for each ingress gateway of the Mesh in such a namespace (or anywhere, when
    the root namespace has services), an ALLOW policy on the gateway's listener `ports`.
    Reports a gateway under that default deny whose `ports` is empty.

    **Why is this bad.** The allow-nothing policy applies to the gateway's pods too: with
    no port to allow, every request from outside gets 403 at the gateway, and the whole
    application is unreachable. meshc refuses rather than render that.

    **Example.**
    ```yaml
    kind: Mesh
    spec:
      defaultAction: deny
      ingressGateway: {api: gateway-api, name: shop, namespace: shop, ports: []}
    ```

    **Use instead.** List the ports the gateway's pods listen on (`ports: [80]`; the
    container ports, 8080/8443 for Istio's classic gateway), or run the gateway in a
    namespace without meshc services.
    """
    model = ctx.model
    for index, gateway in enumerate(model.settings.ingress_gateways):
        if gateway.ports or not under_default_deny(gateway, model):
            continue
        span = gateway_span(model, index, "ports")
        if span is None:
            continue
        denied = (
            gateway.namespace
            if gateway.namespace in model.namespaces
            else f"{model.settings.root_namespace} (the root namespace, mesh-wide)"
        )
        yield Finding(
            span,
            f"{_describe(gateway)} runs under the default deny of namespace {denied} "
            "(meshc-allow-nothing, defaultAction: deny) and has no listener port to allow: "
            "every request from outside would get 403",
            "list the gateway's listener (container) ports in ports:",
        )


@subject_rule("MC231", "unknown-ingress-gateway", Severity.ERROR, istio="IST0101")
def unknown_ingress_gateway(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """An AccessPolicy source names an ingress gateway the Mesh does not have.

    **What it does.** Resolves every `from: [{ingressGateway: ...}]`: `true` stands for
    every gateway of `Mesh.spec.ingressGateway`, a name for the gateway of that `name`
    (a classic gateway without one is named after its deployment, `istio-ingressgateway`).

    **Why is this bad.** A source naming no gateway admits nobody: requests from outside
    are refused although the policy reads as if they were allowed.

    **Example.** `from: [{ingressGateway: shop-gw}]` when the Mesh names `shop-gateway`.

    **Use instead.** `from: [{ingressGateway: shop-gateway}]`, or `ingressGateway: true`.
    """
    settings = ctx.model.settings
    known = ", ".join(g.name for g in settings.ingress_gateways) or "none"
    for policy, index, _, position, source in subject_sources(subject):
        named = source.ingress_gateway
        if not named or gateways_named(named, settings):
            continue
        what = "any gateway" if named is True else f"gateway {named!r}"
        yield Finding(
            policy.span("rules", index, "from", position, "ingressGateway"),
            f"source names {what}, but Mesh.spec.ingressGateway has no such gateway "
            f"(declared: {known})",
            "name a gateway the Mesh declares, or declare it under Mesh.spec.ingressGateway",
        )


@subject_rule("MC232", "gateway-split-unbound", Severity.WARNING)
def gateway_split_unbound(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A Rollout's split cannot apply to the traffic of an ingress gateway that may call
    the service.

    **What it does.** For a Rollout of a service an enforced allow rule opens to an
    ingress gateway (`from: [{ingressGateway: ...}]`), checks that meshc can carry the
    split to that gateway: a classic gateway needs `gateway:` (its Istio `Gateway`
    resource, `namespace/name`) and `hosts:` (the hostnames it serves), which the bound
    VirtualService matches on. A Gateway API gateway always can (an HTTPRoute).

    **Why is this bad.** The mesh's VirtualService applies to sidecars only: requests
    entering through the gateway follow the gateway's own routes, reach every version's
    pods through the Kubernetes Service, and ignore the split — a canary at 0 % still
    serves gateway traffic.

    **Example.**
    ```yaml
    kind: Mesh
    spec: {ingressGateway: {namespace: istio-system}}   # no gateway:, no hosts:
    ```

    **Use instead.**
    `ingressGateway: {gateway: istio-system/shop-gateway, hosts: [shop.example.com]}`.
    """
    model = ctx.model
    for intent, view in subject_rollouts(subject):
        for gateway in gateways_calling(view, model):
            if split_binding(gateway) is not None:
                continue
            if not gateway_http_ports(view, gateway, model):
                continue
            absent = (("gateway:", gateway.gateway is None), ("hosts:", not gateway.hosts))
            missing = " and ".join(name for name, is_absent in absent if is_absent)
            yield Finding(
                intent.span("service"),
                f"{view.key}: {_describe(gateway)} may call this service, but the Mesh gives "
                f"it no {missing}, so its requests ignore the split and reach every version",
                "name the gateway's Istio Gateway resource and hosts in Mesh.spec."
                "ingressGateway (gateway: namespace/name, hosts: [...])",
            )


@subject_rule("MC233", "gateway-route-split-only", Severity.WARNING)
def gateway_route_split_only(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A Rollout's A/B matches or mirror do not apply to a Gateway API gateway's traffic.

    **What it does.** For a Rollout with `match` rules or a `mirror`, of a service a
    Gateway API ingress gateway may call, reports that the HTTPRoute meshc attaches to
    that gateway carries the weighted split only.

    **Why is this bad.** Requests entering through the gateway are split by weight but
    never routed by the A/B headers or cookies, and never mirrored: a tester sending the
    header from outside does not reach the version it names.

    **Example.**
    ```yaml
    kind: Rollout
    spec: {service: frontend, stable: v1, match: [{headers: {x-canary: {exact: "1"}}, version: v2}]}
    ```

    **Use instead.** Test A/B routes from inside the mesh, or route by header in your own
    HTTPRoute to the per-version Services meshc emits (`<service>-<version>`).
    """
    model = ctx.model
    for intent, view in subject_rollouts(subject):
        spec = intent.model.spec
        features = [name for name, used in (("match", spec.match), ("mirror", spec.mirror)) if used]
        if not features:
            continue
        for gateway in gateways_calling(view, model):
            if split_binding(gateway) != "http-route":
                continue
            yield Finding(
                intent.key_span(features[0]),
                f"{view.key}: the HTTPRoute for {_describe(gateway)} carries the split only; "
                f"its requests are not routed by {' or '.join(features)}",
                "test A/B routes from inside the mesh, or route by header in your own HTTPRoute",
            )


@rule("MC234", "gateway-split-routes-collide", Severity.WARNING)
def gateway_split_routes_collide(ctx: LintContext) -> Iterable[Finding]:
    """Rollouts of two services would each bind a catch-all route to the same gateway hosts.

    **What it does.** For each ingress gateway, finds the Rollouts whose split meshc binds
    to it (a VirtualService for the gateway's `hosts`, or an HTTPRoute attached to the
    Gateway API `Gateway`), and reports every one after the first.

    **Why is this bad.** Each route matches every request for the gateway's hosts. Istio
    merges the VirtualServices of one gateway host and the first catch-all wins; Gateway
    API gives a tie to the oldest route. Either way one service receives all the gateway's
    traffic and the other's split never applies to it.

    **Example.** `from: [{ingressGateway: true}]` on both `frontend` and `api`, each with
    a Rollout, and one gateway serving `shop.example.com`.

    **Use instead.** Let the gateway call one service (`ingressGateway: <name>` names a
    single gateway), or give each service its own gateway with its own hosts.
    """
    model = ctx.model
    for gateway in model.settings.ingress_gateways:
        if split_binding(gateway) is None:
            continue
        bound = [
            (view, rollout)
            for view in sorted(model.services.values(), key=lambda v: v.key)
            if (rollout := current_rollout(view)) is not None
            and gateway in gateways_calling(view, model)
            and gateway_http_ports(view, gateway, model)
        ]
        hosts = f" for {', '.join(gateway.hosts)}" if gateway.hosts else ""
        for view, rollout in bound[1:]:
            yield Finding(
                rollout.span("service"),
                f"{view.key}: its split and that of {bound[0][0].key} both bind a catch-all "
                f"route to {_describe(gateway)}{hosts}; the gateway sends all its traffic "
                "to one of them",
                "let the gateway call one of the two services, or give each its own gateway",
            )
