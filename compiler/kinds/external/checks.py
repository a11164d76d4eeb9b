"""Lint rules about External documents: clashes with Services, duplicates, unused ones."""

from __future__ import annotations

from collections.abc import Iterable

from compiler.diagnostics import Severity
from compiler.lint.registry import Finding, LintContext, rule
from compiler.model.mesh import ServiceKey


@rule("MC243", "external-shadows-service", Severity.ERROR)
def external_shadows_service(ctx: LintContext) -> Iterable[Finding]:
    """An External has the namespace and name of a declared Service.

    **What it does.** Reports every External whose `metadata.namespace`/`metadata.name`
    is also a Service's.

    **Why is this bad.** `calls:` names Services and Externals the same way (`name` or
    `ns/name`), so `calls: [payments]` could mean either the in-mesh service or the
    outside host: meshc refuses to guess which one a caller's proxy should reach.

    **Example.** A Service `shop/payments` and an External `shop/payments` for
    `api.payments.example`.

    **Use instead.** Name the External after the outside provider:
    `metadata: {name: payments-api}`, and call it `calls: [payments-api]`.
    """
    model = ctx.model
    for key, external in model.externals.items():
        service = model.services.get(key)
        if service is None:
            continue
        yield Finding(
            external.intent.doc.span("metadata", "name"),
            f"External {key} has the name of the Service declared at "
            f"{service.intent.doc.span()}; a calls: entry naming it would be ambiguous",
            "rename the External (e.g. after the provider: <name>-api)",
        )


@rule("MC244", "duplicate-external", Severity.ERROR)
def duplicate_external(ctx: LintContext) -> Iterable[Finding]:
    """The same External (namespace and name) is declared more than once.

    **What it does.** Reports every External document after the first with the same
    `metadata.namespace` and `metadata.name`.

    **Why is this bad.** Only the first declaration is lowered; the hosts and ports of
    the others are silently ignored, so callers may be blocked from a host the second
    copy names.

    **Example.** Two files both declaring `kind: External`,
    `metadata: {name: stripe, namespace: shop}`.

    **Use instead.** One External per destination; merge the hosts and ports.
    """
    model = ctx.model
    for duplicate in model.duplicate_externals:
        meta = duplicate.model.metadata
        first = model.externals.get(ServiceKey(meta.namespace, meta.name))
        where = f" (first declared at {first.intent.doc.span()})" if first else ""
        yield Finding(
            duplicate.doc.span("metadata", "name"),
            f"External {meta.namespace}/{meta.name} is declared twice{where}; this "
            "declaration is ignored",
            "keep one External document per destination and merge the two",
        )


@rule("MC245", "unused-external", Severity.INFO)
def unused_external(ctx: LintContext) -> Iterable[Finding]:
    """An External that no service calls.

    **What it does.** Reports every External that no Service lists in its `calls:`.

    **Why is this bad.** It still lowers to a ServiceEntry, which makes the outside hosts
    known to the mesh (and reachable under `REGISTRY_ONLY` by any workload in the
    namespaces it is exported to) while no declared caller needs them. Often a leftover
    after the last call was removed.

    **Example.** `kind: External` `stripe` with no `calls: [stripe]` anywhere.

    **Use instead.** Remove the External, or add it to the `calls:` of the services that
    use it.
    """
    model = ctx.model
    if not model.externals:
        return
    called = {target for view in model.services.values() for target in view.calls}
    for key, external in model.externals.items():
        if key not in called:
            yield Finding(
                external.intent.doc.span("metadata", "name"),
                f"no service calls External {key}",
                f"remove it, or add {key.name} to the calls: of the services that use it",
            )


@rule("MC246", "external-tcp-port-without-addresses", Severity.WARNING, istio="IST0134")
def external_tcp_port_without_addresses(ctx: LintContext) -> Iterable[Finding]:
    """An External has a `tcp` port but no addresses proxies can match it by.

    **What it does.** Reports each `tcp` port of an External whose ServiceEntry gets no
    `addresses`: none are given, or (with `resolution: dns`) they include a CIDR, or the
    resolution is `static` (the addresses are then its endpoints).

    **Why is this bad.** Plain TCP carries no host name (no HTTP `Host`, no TLS SNI), so
    without addresses Istio matches *every* connection to that port, whatever its
    destination, and sends it to this External: a second External or an undeclared host
    on the same port is silently routed here. Istio reports the same as IST0134
    (ServiceEntryAddressesRequired).

    **Example.**
    ```yaml
    kind: External
    spec: {hosts: [db.example.com], ports: [{name: pg, port: 5432, protocol: tcp}]}
    ```

    **Use instead.** Give the destination's IPs: `addresses: [203.0.113.10]`, or use
    `protocol: tls` when the connection is TLS (matched by SNI).
    """
    for key, external in ctx.model.externals.items():
        spec = external.spec
        if spec.matched_addresses:
            continue
        for index, port in enumerate(spec.ports):
            if port.protocol != "tcp":
                continue
            yield Finding(
                external.intent.span("ports", index),
                f"External {key}: tcp port {port.port} has no addresses to match, so every "
                f"connection to port {port.port} is sent to it, whatever the host",
                "add addresses (single IPs with resolution dns), or use protocol: tls when "
                "the connection carries SNI",
            )


@rule("MC247", "external-egress-to-any-address", Severity.INFO)
def external_egress_to_any_address(ctx: LintContext) -> Iterable[Finding]:
    """Under network default deny, a called External without addresses opens its ports to
    every address.

    **What it does.** With `networkPolicy.defaultDeny`, reports each External that some
    service calls and that lists no `addresses`.

    **Why is this bad.** A NetworkPolicy selects peers by pod labels or IP blocks, never by
    host name: to let the callers reach `api.example.com:443` it must allow port 443 to
    `0.0.0.0/0` and `::/0`. At layer 3 the callers can then reach any host on those ports;
    only their Sidecar (with `outboundTrafficPolicy: REGISTRY_ONLY`) keeps other hosts out.

    **Example.** `kind: External` with `hosts: [api.example.com]` and no `addresses`,
    called by `checkout`, in a mesh with `networkPolicy: {defaultDeny: true}`.

    **Use instead.** When the provider publishes its address ranges, list them:
    `addresses: [203.0.113.0/24]`; otherwise keep `outboundTrafficPolicy: REGISTRY_ONLY`.
    """
    model = ctx.model
    if not model.settings.network_policy.default_deny or not model.externals:
        return
    called = {target for view in model.services.values() for target in view.calls}
    for key, external in model.externals.items():
        if key not in called or external.spec.addresses:
            continue
        ports = ", ".join(str(port.port) for port in external.spec.ports)
        yield Finding(
            external.intent.doc.span("metadata", "name"),
            f"External {key} has no addresses: NetworkPolicy cannot select a host name, so "
            f"its callers may open port {ports} to every address",
            "list the provider's address ranges in addresses:, and keep "
            "outboundTrafficPolicy: REGISTRY_ONLY so the Sidecar refuses other hosts",
        )
