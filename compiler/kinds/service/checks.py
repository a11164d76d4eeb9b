"""Lint rules about Service documents: references, versions, identities."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from compiler.diagnostics import Severity
from compiler.lint.registry import Finding, LintContext, rule, subject_rule
from compiler.lint.subjects import Subject, SubjectContext, subject_views
from compiler.model.mesh import ServiceKey
from compiler.validate import Intent


@subject_rule("MC201", "unknown-service", Severity.ERROR, istio="IST0101")
def unknown_called_service(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A `calls:` entry names a service that no Service document declares.

    **What it does.** Resolves every entry of a Service's `calls:` list (`name` in the same
    namespace, `ns/name` elsewhere) against the declared Services and Externals.

    **Why is this bad.** The client's proxy gets no route for an undeclared host, so the call
    fails at runtime; usually the name is misspelt or the namespace is missing. Istio reports
    the same mistake in routing objects as IST0101 (ReferencedResourceNotFound).

    **Example.**
    ```yaml
    kind: Service
    metadata: {name: productpage, namespace: bookinfo}
    spec: {ports: [{name: http, port: 9080}], calls: [review]}
    ```

    **Use instead.** `calls: [reviews]` (or `calls: [other-ns/reviews]`).
    """
    model = ctx.model
    for view in subject_views(subject):
        for index, ref in enumerate(view.spec.calls):
            namespace = view.key.namespace
            if model.service(ref, namespace) is not None or model.declared_invalid(ref, namespace):
                continue
            if ServiceKey.parse(ref, namespace) in model.externals:
                continue
            yield Finding(
                view.intent.span("calls", index),
                f"{view.key} calls {ref!r}, which no Service or External declares",
                "declare the Service (or an External for a host outside the mesh), or fix "
                "the name (use ns/name for another namespace)",
            )


@subject_rule("MC206", "version-contradicts-selector", Severity.ERROR, istio="IST0127")
def version_contradicts_selector(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A version's labels give a selector key a different value, so the version selects nothing.

    **What it does.** Compares each version's `labels` with the service's `selector` (by
    default `{app: <name>}`); a key present in both with different values is reported.

    **Why is this bad.** A version's labels are ANDed with the selector: the subset asks for
    pods labelled `app: reviews` *and* `app: reviews-v2`, and no pod has both. Traffic sent to
    that version has no endpoint and fails with 503. Istio reports a subset or policy that
    matches no workload as IST0127 (NoMatchingWorkloadsFound).

    **Example.**
    ```yaml
    kind: Service
    metadata: {name: reviews, namespace: bookinfo}
    spec:
      ports: [{name: http, port: 9080, protocol: http}]
      versions: {v2: {labels: {app: reviews-v2}}}
    ```

    **Use instead.** Label versions with a key the selector does not use:
    `versions: {v2: {labels: {version: v2}}}`.
    """
    for view in subject_views(subject):
        for version, spec in view.spec.versions.items():
            for label, value in spec.labels.items():
                wanted = view.selector.get(label)
                if wanted is None or wanted == value:
                    continue
                yield Finding(
                    view.intent.span("versions", version, "labels", label),
                    f"version {version!r} of {view.key}: label {label}={value} contradicts the "
                    f"selector {label}={wanted}, so the version selects no workload",
                    f"drop {label!r} from the version's labels (the selector is ANDed in), or "
                    "tell versions apart with another key such as 'version'",
                )


@rule("MC301", "shared-identity", Severity.WARNING)
def shared_identity(ctx: LintContext) -> Iterable[Finding]:
    """Two services run as the same identity (service account).

    **What it does.** Groups services by their SPIFFE identity
    (`spiffe://<trust-domain>/ns/<namespace>/sa/<identity>`) and reports every service that
    shares its identity with another.

    **Why is this bad.** Authorization matches callers by the identity in their mTLS
    certificate, not by service name. A rule `from: [{service: a}]` admits every workload
    running as `a`'s service account, so allowing one of the services silently allows the
    other too, and a compromise of one is a compromise of both.

    **Example.**
    ```yaml
    kind: Service
    metadata: {name: reviews, namespace: bookinfo}
    spec: {identity: bookinfo, ports: [{name: http, port: 9080, protocol: http}]}
    ---
    kind: Service
    metadata: {name: ratings, namespace: bookinfo}
    spec: {identity: bookinfo, ports: [{name: http, port: 9080, protocol: http}]}
    ```

    **Use instead.** One service account per service: `identity: bookinfo-reviews` and
    `identity: bookinfo-ratings`.
    """
    model = ctx.model
    shared = sorted((spiffe, keys) for spiffe, keys in model.identities.items() if len(keys) > 1)
    for spiffe, keys in shared:
        for key in keys:
            view = model.services[key]
            others = _listed([str(k) for k in keys if k != key])
            yield Finding(
                view.intent.span("identity"),
                f"{key} runs as {spiffe}, the same identity as {others}; a rule that allows one "
                "of them allows the others",
                "give each service its own service account in spec.identity",
            )


_LISTED = 5
"""Names a finding spells out before "and N more": with k services on one identity, each
of the k findings would otherwise list k - 1 names (k² text for a large k)."""


def _listed(names: list[str]) -> str:
    if len(names) <= _LISTED:
        return ", ".join(names)
    return f"{', '.join(names[:_LISTED])} and {len(names) - _LISTED} more"


@rule("MC302", "duplicate-service", Severity.ERROR)
def duplicate_service(ctx: LintContext) -> Iterable[Finding]:
    """The same Service (namespace and name) is declared more than once.

    **What it does.** Reports every Service document after the first with the same
    `metadata.namespace` and `metadata.name`.

    **Why is this bad.** Only the first declaration is used; the ports, versions, identity
    and calls of the others are ignored, so an edit to the second copy silently does
    nothing (or a copy-paste left a stale service behind).

    **Example.** Two files both declaring `kind: Service`,
    `metadata: {name: reviews, namespace: bookinfo}`.

    **Use instead.** One Service document per service; merge the two.
    """
    model = ctx.model
    for duplicate in model.duplicate_services:
        meta = duplicate.model.metadata
        first = model.services.get(ServiceKey(meta.namespace, meta.name))
        where = f" (first declared at {first.intent.doc.span()})" if first else ""
        yield Finding(
            duplicate.doc.span("metadata", "name"),
            f"Service {meta.namespace}/{meta.name} is declared twice{where}; this declaration is "
            "ignored",
            "keep one Service document per service and merge the two",
        )


@subject_rule("MC307", "duplicate-version-labels", Severity.ERROR)
def duplicate_version_labels(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """Two versions of one service select exactly the same workloads.

    **What it does.** Compares the full labels of each version (the selector ANDed with the
    version's own labels) and reports a version whose labels equal an earlier version's.

    **Why is this bad.** Both subsets select the same pods, so a split between them moves no
    traffic, and a rollout "to v2" keeps serving the v1 pods: the dashboards say one thing and
    the traffic does another. Usually a version's labels were copied and not edited.

    **Example.**
    ```yaml
    versions:
      v1: {labels: {version: v1}}
      v2: {labels: {version: v1}}
    ```

    **Use instead.** Distinct labels per version: `v2: {labels: {version: v2}}`.
    """
    for view in subject_views(subject):
        seen: dict[tuple[tuple[str, str], ...], str] = {}
        for version in view.spec.versions:
            labels = tuple(sorted(view.version_labels(version).items()))
            earlier = seen.setdefault(labels, version)
            if earlier == version:
                continue
            shown = ", ".join(f"{k}: {v}" for k, v in labels)
            yield Finding(
                view.intent.key_span("versions", version),
                f"version {version!r} of {view.key} has the same labels as {earlier!r} "
                f"({{{shown}}}), so both select the same workloads",
                f"give {version!r} its own label value (e.g. version: {version})",
            )


@subject_rule("MC240", "policy-for-client-only-service", Severity.ERROR)
def policy_for_client_only_service(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """An AccessPolicy is written for a service that has no ports (a caller only).

    **What it does.** Reports every AccessPolicy whose `spec.service` is a Service declared
    without `ports`.

    **Why is this bad.** A Service without ports is a client only (a load generator, a
    cron job): nothing can call it, so there is no host, no port and no request for the
    policy to allow or deny. Usually the ports were forgotten, or the policy was meant for
    the service this one calls.

    **Example.**
    ```yaml
    kind: Service
    metadata: {name: loadgenerator, namespace: shop}
    spec: {calls: [frontend]}
    ---
    kind: AccessPolicy
    metadata: {name: loadgenerator, namespace: shop}
    spec: {service: loadgenerator, rules: [{from: [{service: frontend}]}]}
    ```

    **Use instead.** Declare the ports the workload serves, or write the policy for the
    server it calls: `spec: {service: frontend, rules: [{from: [{service: loadgenerator}]}]}`.
    """
    view = subject.view
    if view is None or not view.client_only:
        return
    for policy in subject.policies:
        yield Finding(
            policy.span("service"),
            f"AccessPolicy {policy.model.metadata.name!r} is written for {view.key}, which "
            "has no ports (a caller only): nothing can call it",
            "declare the ports it serves in its Service, or write the policy for the "
            "service it calls",
        )


@subject_rule("MC241", "traffic-policy-for-client-only-service", Severity.ERROR)
def traffic_policy_for_client_only_service(
    ctx: SubjectContext, subject: Subject
) -> Iterable[Finding]:
    """A Rollout or Resilience is written for a service that has no ports (a caller only).

    **What it does.** Reports every Rollout and Resilience whose `spec.service` is a
    Service declared without `ports`.

    **Why is this bad.** Rollouts split, and Resilience retries and limits, the traffic
    *to* a service; a caller-only workload receives none, so the document would lower to
    a VirtualService or DestinationRule for a host that does not exist. A Resilience for
    the calls a client makes belongs to the service it calls.

    **Example.**
    ```yaml
    kind: Resilience
    metadata: {name: loadgenerator, namespace: shop}
    spec: {service: loadgenerator, timeout: 2s}
    ```

    **Use instead.** `spec: {service: frontend, timeout: 2s}` (the service called), or
    declare the ports if the workload does serve traffic.
    """
    view = subject.view
    if view is None or not view.client_only:
        return
    documents: list[Intent[Any]] = [*subject.rollouts, *subject.resilience]
    for intent in documents:
        yield Finding(
            intent.span("service"),
            f"{intent.doc.kind} {intent.model.metadata.name!r} is written for {view.key}, "
            "which has no ports (a caller only): no traffic reaches it",
            "write it for the service it calls, or declare the ports it serves",
        )


@subject_rule("MC242", "call-to-client-only-service", Severity.ERROR)
def call_to_client_only_service(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A `calls:` entry names a service that has no ports (a caller only).

    **What it does.** Reports every `calls:` entry that resolves to a Service declared
    without `ports`.

    **Why is this bad.** A caller-only workload has no Kubernetes Service and no host:
    the caller's proxy has nowhere to send the request, and the call fails at runtime.

    **Example.** `frontend` declares `calls: [loadgenerator]`, and `loadgenerator` is
    declared with no `ports`.

    **Use instead.** Remove the call, or declare the ports the called workload serves.
    """
    model = ctx.model
    for view in subject_views(subject):
        for index, target in enumerate(view.calls):
            callee = model.services.get(target)
            if callee is None or not callee.client_only:
                continue
            yield Finding(
                view.intent.span("calls", index),
                f"{view.key} calls {callee.key}, which has no ports (a caller only): there "
                "is no host to call",
                f"remove {callee.key.short(view.key.namespace)} from calls:, or declare its ports",
            )
