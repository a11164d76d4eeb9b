"""Lint rules about AccessPolicy documents: references, dead or redundant rules, and the
security smells of zero-trust rules (wildcards, whole namespaces, header-only checks).

Coverage ("rule A admits everything rule B admits") is decided on principals, the way
Istio matches them: a `service` source is the service's SPIFFE identity, a `namespace`
source matches every identity in that namespace, `*` any mesh identity, and the ingress
gateway its service account's identity.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime

from compiler.diagnostics import Severity
from compiler.kinds.access_policy.model import (
    AccessPolicyDocument,
    Operation,
    Rule,
    Source,
    path_covers,
)
from compiler.kinds.mesh.checks import evaluated_at, plaintext_views
from compiler.lint.registry import Finding, LintContext, rule, subject_rule
from compiler.lint.subjects import Subject, SubjectContext
from compiler.model.access import (
    Principal,
    gateway_spiffes,
    resolve_source,
    spiffe_namespace,
    spiffe_of,
)
from compiler.model.graph import decide_call
from compiler.model.mesh import MeshModel, ServiceKey, ServiceView
from compiler.validate import Intent

Policy = Intent[AccessPolicyDocument]


@dataclass(frozen=True, slots=True)
class PlacedRule:
    """A rule with the policy it sits in and its index there (for spans and messages)."""

    policy: Policy
    index: int
    rule: Rule

    @property
    def namespace(self) -> str:
        return self.policy.model.metadata.namespace

    @property
    def where(self) -> str:
        name = self.policy.model.metadata.name
        span = self.policy.span("rules", self.index)
        return f"rule {self.index + 1} of AccessPolicy {name!r} at {span}"


def placed_rules(view: ServiceView) -> list[PlacedRule]:
    return [
        PlacedRule(policy, index, r)
        for policy in view.policies
        for index, r in enumerate(policy.model.spec.rules)
    ]


def principal_of(source: Source, namespace: str, model: MeshModel) -> Principal:
    return resolve_source(source, namespace, model).principal


def principals_of(source: Source, namespace: str, model: MeshModel) -> tuple[Principal, ...]:
    """Every principal a source matches (`ingressGateway: true`: one per gateway)."""
    return resolve_source(source, namespace, model).principals


def principal_covers(outer: Principal, inner: Principal) -> bool:
    if outer.kind == "any":
        return True
    if outer.kind == "namespace":
        if inner.kind == "namespace":
            return inner.value == outer.value
        return inner.kind == "id" and spiffe_namespace(inner.value) == outer.value
    return inner.kind == "id" and inner.value == outer.value


def port_numbers(ports: list[int | str], view: ServiceView) -> set[int | str]:
    """Port numbers of an operation, with port names resolved through the service."""
    by_name = {p.name: p.port for p in view.spec.ports}
    return {by_name.get(p, p) if isinstance(p, str) else p for p in ports}


def operation_covers(outer: Operation, inner: Operation, view: ServiceView) -> bool:
    if outer.ports and not (
        inner.ports and port_numbers(inner.ports, view) <= port_numbers(outer.ports, view)
    ):
        return False
    if outer.methods and not (inner.methods and set(inner.methods) <= set(outer.methods)):
        return False
    return not outer.paths or bool(
        inner.paths and all(any(path_covers(o, i) for o in outer.paths) for i in inner.paths)
    )


def headers_cover(outer: dict[str, list[str]], inner: dict[str, list[str]]) -> bool:
    """Whether every request meeting `inner`'s header conditions meets `outer`'s."""
    lowered = {name.lower(): set(values) for name, values in inner.items()}
    return all(
        name.lower() in lowered and lowered[name.lower()] <= set(values)
        for name, values in outer.items()
    )


def rule_covers(outer: PlacedRule, inner: PlacedRule, view: ServiceView, model: MeshModel) -> bool:
    """Whether `outer` matches every request that `inner` matches."""
    # The local checks first: they are cheaper than resolving principals and usually decide.
    if not (
        operation_covers(outer.rule.to, inner.rule.to, view)
        and headers_cover(outer.rule.headers, inner.rule.headers)
    ):
        return False
    outer_principals = [
        p for s in outer.rule.from_ for p in principals_of(s, outer.namespace, model)
    ]
    for source in inner.rule.from_:
        for principal in principals_of(source, inner.namespace, model):
            if not any(principal_covers(o, principal) for o in outer_principals):
                return False
    return True


def source_key(source: Source) -> str:
    """The key the user wrote for this source (for spans)."""
    if source.ingress_gateway:
        return "ingressGateway"
    if source.service:
        return "service"
    if source.namespace:
        return "namespace"
    return "identity"


def subject_sources(subject: Subject) -> Iterator[tuple[Policy, int, Rule, int, Source]]:
    """`iter_sources` of the policies written for one subject."""
    for policy in subject.policies:
        for index, r in enumerate(policy.model.spec.rules):
            for position, source in enumerate(r.from_):
                yield policy, index, r, position, source


# --- references -------------------------------------------------------------------------


@subject_rule("MC202", "unknown-policy-target", Severity.ERROR, istio="IST0101")
def unknown_policy_target(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """An AccessPolicy is written for a service that no Service document declares.

    **What it does.** Resolves `spec.service` of every AccessPolicy (`name` in the policy's
    namespace, `ns/name` elsewhere) against the declared services.

    **Why is this bad.** A policy for an unknown service protects nothing: it cannot be
    lowered (there is no selector to apply it to), while the real service stays under the
    mesh default. Usually a misspelt name or a missing namespace. Istio reports unknown
    references as IST0101 (ReferencedResourceNotFound).

    **Example.**
    ```yaml
    kind: AccessPolicy
    metadata: {name: reviews, namespace: bookinfo}
    spec: {service: review, rules: [{from: [{service: productpage}]}]}
    ```

    **Use instead.** `service: reviews` (or `service: other-ns/reviews`).
    """
    if subject.view is not None or ctx.model.declared_invalid(
        subject.key.name, subject.key.namespace
    ):
        return
    for policy in subject.policies:
        key = subject.key
        yield Finding(
            policy.span("service"),
            f"AccessPolicy {policy.model.metadata.name!r} is for {key}, which no Service "
            "declares; it protects nothing",
            "fix the service name (ns/name for another namespace), or declare the Service",
        )


@subject_rule("MC203", "unknown-source-service", Severity.ERROR, istio="IST0101")
def unknown_source_service(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A rule's `from.service` names a service that no Service document declares.

    **What it does.** Resolves every `from: [{service: ...}]` (except `*`) against the
    declared services, relative to the AccessPolicy's namespace.

    **Why is this bad.** meshc matches callers by the identity of the named service; for an
    unknown service there is no identity, so the rule admits nobody and the caller the
    author meant is denied. Istio reports unknown references as IST0101.

    **Example.** `from: [{service: productpgae}]`

    **Use instead.** `from: [{service: productpage}]` (or `{service: frontend/web}`).
    """
    model = ctx.model
    for policy, index, _, position, source in subject_sources(subject):
        if not source.service or source.service == "*":
            continue
        namespace = policy.model.metadata.namespace
        if model.service(source.service, namespace) is None and not model.declared_invalid(
            source.service, namespace
        ):
            yield Finding(
                policy.span("rules", index, "from", position, "service"),
                f"source service {ServiceKey.parse(source.service, namespace)} is not declared "
                "by any Service, so this source admits nobody",
                "fix the name (ns/name for another namespace), or declare the Service",
            )


@subject_rule("MC204", "unknown-source-identity", Severity.WARNING, istio="IST0101")
def unknown_source_identity(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A rule's `from.identity` is not the identity of any declared service.

    **What it does.** Turns every `from: [{identity: ...}]` (`ns/sa` or a SPIFFE ID) into a
    SPIFFE ID and looks for a declared service running as it (or the ingress gateway).

    **Why is this bad.** Usually a typo in the service account, or the service account of a
    workload meshc does not know about. A misspelt identity admits nobody; an undeclared
    workload is invisible to the access graph, the plan and the other rules.

    **Example.** `from: [{identity: bookinfo/bookinfo-productpage-sa}]` when the service
    runs as `bookinfo-productpage`.

    **Use instead.** `from: [{service: productpage}]`, or the exact identity of a declared
    service; declare the calling workload as a Service if it is missing.
    """
    model = ctx.model
    gateways = gateway_spiffes(model)
    for policy, index, _, position, source in subject_sources(subject):
        if not source.identity or source.identity == "*":
            continue
        spiffe = spiffe_of(source.identity, model)
        if spiffe not in model.identities and spiffe not in gateways:
            yield Finding(
                policy.span("rules", index, "from", position, "identity"),
                f"source identity {spiffe} is not the identity of any declared Service",
                "check the service account name, or declare the calling Service (spec.identity)",
            )


@subject_rule("MC205", "unknown-source-namespace", Severity.WARNING, istio="IST0101")
def unknown_source_namespace(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A rule's `from.namespace` names a namespace where no service is declared.

    **What it does.** Checks every `from: [{namespace: ...}]` (except `*`) against the
    namespaces of the declared services.

    **Why is this bad.** Either the name is misspelt (and the rule admits nobody), or it
    opens the door to workloads meshc knows nothing about — anything deployed there later
    is admitted without review. Istio reports unknown namespaces as IST0101.

    **Example.** `from: [{namespace: bookinf}]`

    **Use instead.** Name the calling services: `from: [{service: frontend/web}]`; for the
    ingress gateway, `from: [{ingressGateway: true}]`.
    """
    namespaces = frozenset(ctx.model.namespaces)
    for policy, index, _, position, source in subject_sources(subject):
        if not source.namespace or source.namespace == "*" or source.namespace in namespaces:
            continue
        yield Finding(
            policy.span("rules", index, "from", position, "namespace"),
            f"source namespace {source.namespace!r} has no declared Service",
            "fix the namespace, or name the calling services; use ingressGateway: true for "
            "the gateway",
        )


@subject_rule("MC207", "unknown-port", Severity.ERROR, istio="IST0101")
def unknown_port(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A rule's `to.ports` names a port the service does not have.

    **What it does.** Checks each entry of `to.ports` — a port number or a port name —
    against the `ports` of the target Service.

    **Why is this bad.** A condition on a port the service does not expose never matches: an
    allow rule admits nothing, a deny rule denies nothing. Writing the container port
    (`targetPort`) instead of the service port is a common cause.

    **Example.** `to: {ports: [8080]}` on a service with `ports: [{name: http, port: 9080}]`.

    **Use instead.** `to: {ports: [9080]}` or `to: {ports: [http]}`.
    """
    view = subject.view
    if view is None:
        return
    for policy in subject.policies:
        numbers = {p.port for p in view.spec.ports}
        names = {p.name for p in view.spec.ports}
        declared = ", ".join(f"{p.name} ({p.port})" for p in view.spec.ports)
        for index, r in enumerate(policy.model.spec.rules):
            for position, port in enumerate(r.to.ports):
                if port in numbers or port in names:
                    continue
                if isinstance(port, str) and port.isdigit() and int(port) in numbers:
                    continue
                target = [p.port for p in view.spec.ports if p.container_port == port]
                hint = (
                    f"write the service port {target[0]}, not the container port"
                    if target
                    else f"use one of the service's ports: {declared}"
                )
                yield Finding(
                    policy.span("rules", index, "to", "ports", position),
                    f"port {port!r} is not a port of {view.key} (it has {declared}), so this "
                    f"{r.action} rule never matches",
                    hint,
                )


# --- conflicts --------------------------------------------------------------------------


@subject_rule("MC303", "allow-shadowed-by-deny", Severity.WARNING)
def allow_shadowed_by_deny(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A deny rule covers every source and operation of an allow rule, so the allow is dead.

    **What it does.** For each service, compares every allow rule with every deny rule of all
    its AccessPolicies in the same mode (several policies for a service are one union). An
    allow rule is reported when one deny rule matches all its sources (by identity: a
    namespace covers its services, `*` covers everything), all its ports, methods and paths,
    and all its header conditions.

    **Why is this bad.** Deny is evaluated first and wins: the allow rule never admits
    anything. Either the deny is broader than intended (a caller that should work is cut
    off) or the allow is a leftover that reviewers still read as granting access.

    **Example.**
    ```yaml
    rules:
    - from: [{service: productpage}]
      to: {methods: [GET], paths: ["/reviews/*"]}
    - from: [{namespace: bookinfo}]
      action: deny
    ```

    **Use instead.** Narrow the deny (e.g. `to: {methods: [DELETE]}`) or remove the dead allow.
    """
    model = ctx.model
    view = subject.view
    if view is not None:
        placed = placed_rules(view)
        denies = [p for p in placed if p.rule.action == "deny"]
        for allow in placed if denies else ():
            if allow.rule.action != "allow":
                continue
            for deny in denies:
                if not _same_mode(allow, deny):
                    continue
                if rule_covers(deny, allow, view, model):
                    yield Finding(
                        allow.policy.span("rules", allow.index),
                        f"allow rule {allow.index + 1} for {view.key} never takes effect: "
                        f"deny {deny.where} matches all of its requests",
                        "narrow the deny rule, or remove the allow rule",
                    )
                    break


@subject_rule("MC304", "redundant-allow", Severity.WARNING)
def redundant_allow(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """An allow rule is fully covered by another allow rule for the same service.

    **What it does.** For each service, compares the allow rules of all its AccessPolicies in
    the same mode. A rule is reported when another single allow rule matches all its sources,
    ports, methods, paths and header conditions (of two identical rules, the later one).
    A rule with `log: true` covered by one without is kept (it marks matches for audit).

    **Why is this bad.** The covered rule grants nothing on its own, but it looks like it
    does: tightening it later changes nothing, because the broader rule still admits the
    same requests.

    **Example.**
    ```yaml
    rules:
    - from: [{service: productpage}]
      to: {methods: [GET]}
    - from: [{service: productpage}]
      to: {methods: [GET], paths: ["/reviews/*"]}
    ```

    **Use instead.** Keep the rule that states the intended access and remove the other.
    """
    model = ctx.model
    view = subject.view
    if view is not None:
        allows = [p for p in placed_rules(view) if p.rule.action == "allow"]
        # Methods and paths, once per rule: a cheap necessary condition of `rule_covers`
        # that rejects most of the (rules x rules) pairs before the full comparison.
        shapes = [(frozenset(p.rule.to.methods), p.rule.to.paths) for p in allows]
        index = _CoverIndex.of(allows, model)
        for position, inner in enumerate(allows):
            inner_methods, inner_paths = shapes[position]
            for other in index.candidates(position, inner, model):
                outer = allows[other]
                outer_methods, outer_paths = shapes[other]
                if outer_methods and not (inner_methods and inner_methods <= outer_methods):
                    continue
                if outer_paths and not _paths_covered(outer_paths, inner_paths):
                    continue
                if not _same_mode(inner, outer):
                    continue
                if inner.rule.log and not outer.rule.log:
                    continue
                if not rule_covers(outer, inner, view, model):
                    continue
                if other > position and rule_covers(inner, outer, view, model):
                    continue  # identical: report the later of the two only
                yield Finding(
                    inner.policy.span("rules", inner.index),
                    f"allow rule {inner.index + 1} for {view.key} is redundant: allow "
                    f"{outer.where} already admits all of its requests",
                    "remove this rule, or narrow the broader one if it admits too much",
                )
                break


@dataclass(slots=True)
class _CoverIndex:
    """Which allow rules may cover a given one, looked up rather than tried one by one.

    A rule can only cover another if it covers the other's first path and its first source,
    so each rule is filed under its paths (exact, prefix `p*`, suffix `*s`, or none: every
    path) and its principals (any, a namespace, one identity). The candidates of a rule are
    a superset of the rules covering it, in their original order, so MC304 finds exactly what
    comparing every pair finds, without the (rules x rules) scan that made a policy of
    thousands of rules take seconds."""

    every_path: set[int]
    exact: dict[str, set[int]]
    prefixes: dict[str, set[int]]
    suffixes: dict[str, set[int]]
    any_source: set[int]
    namespaces: dict[str, set[int]]
    ids: dict[str, set[int]]

    @classmethod
    def of(cls, rules: list[PlacedRule], model: MeshModel) -> _CoverIndex:
        index = cls(set(), {}, {}, {}, set(), {}, {})
        for position, placed in enumerate(rules):
            index._file_paths(position, placed.rule.to.paths)
            for source in placed.rule.from_:
                for principal in principals_of(source, placed.namespace, model):
                    if principal.kind == "any":
                        index.any_source.add(position)
                    else:
                        table = index.namespaces if principal.kind == "namespace" else index.ids
                        table.setdefault(principal.value, set()).add(position)
        return index

    def _file_paths(self, position: int, paths: list[str]) -> None:
        if not paths:
            self.every_path.add(position)
        for path in paths:  # classified in `path_covers`' order
            if path.endswith("*"):
                self.prefixes.setdefault(path[:-1], set()).add(position)
            elif path.startswith("*"):
                self.suffixes.setdefault(path[1:], set()).add(position)
            else:
                self.exact.setdefault(path, set()).add(position)

    def candidates(self, position: int, inner: PlacedRule, model: MeshModel) -> list[int]:
        """Positions of the rules that may cover `inner` (never itself), in order."""
        by_path = self._by_path(inner.rule.to.paths)
        if inner.rule.from_:
            principal = principal_of(inner.rule.from_[0], inner.namespace, model)
            found = _meet(by_path, self._by_source(principal))
        else:
            found = set().union(*by_path)
        found.discard(position)
        return sorted(found)

    def _by_path(self, paths: list[str]) -> list[AbstractSet[int]]:
        """The groups of rules whose paths may cover the first of `paths`."""
        found: list[AbstractSet[int]] = [self.every_path]
        if not paths:
            return found  # a rule with paths never covers one without (`_paths_covered`)
        first = paths[0]
        found.append(self.exact.get(first, _NONE))
        for cut in range(len(first) + 1):
            found.append(self.prefixes.get(first[:cut], _NONE))
            found.append(self.suffixes.get(first[cut:], _NONE))
        return [group for group in found if group]

    def _by_source(self, principal: Principal) -> list[AbstractSet[int]]:
        """The groups of rules with a source that may cover `principal`."""
        found: list[AbstractSet[int]] = [self.any_source]
        if principal.kind == "namespace":
            found.append(self.namespaces.get(principal.value, _NONE))
        elif principal.kind == "id":
            found.append(self.ids.get(principal.value, _NONE))
            found.append(self.namespaces.get(spiffe_namespace(principal.value) or "", _NONE))
        return [group for group in found if group]


_NONE: frozenset[int] = frozenset()


def _meet(left: list[AbstractSet[int]], right: list[AbstractSet[int]]) -> set[int]:
    """The union of `left` intersected with the union of `right`, walking only the smaller
    side: one rule per caller files every rule of a hub under the same path, and building
    that union for each rule made MC304 quadratic in the callers."""
    if sum(map(len, left)) > sum(map(len, right)):
        left, right = right, left
    return {position for group in left for position in group if any(position in g for g in right)}


def _paths_covered(outer: list[str], inner: list[str]) -> bool:
    """Every inner path is covered by an outer one (one path each is the common case)."""
    if len(outer) == 1 and len(inner) == 1:
        return path_covers(outer[0], inner[0])
    return bool(inner) and all(any(path_covers(o, i) for o in outer) for i in inner)


def _same_mode(a: PlacedRule, b: PlacedRule) -> bool:
    return a.policy.model.spec.mode == b.policy.model.spec.mode


# --- security ---------------------------------------------------------------------------


@subject_rule("MC403", "wildcard-without-justification", Severity.ERROR)
def wildcard_without_justification(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """An allow rule admits `*` (any mesh identity) without a `justification`.

    **What it does.** Reports allow rules with a `*` source (service, namespace or identity)
    and no `justification` text.

    **Why is this bad.** `*` admits every authenticated workload in the mesh, present and
    future — the opposite of zero trust. It is sometimes right (a public health endpoint, a
    shared auth service), but it must be a reviewed decision with its reason on record.

    **Example.** `- from: [{service: "*"}]`

    **Use instead.** Name the callers (`from: [{service: productpage}]`), or keep the
    wildcard and say why: `justification: "token introspection, called by every service"`.
    """
    for policy, index, r, position, source in subject_sources(subject):
        if r.action != "allow" or not source.is_wildcard or (r.justification or "").strip():
            continue
        key = source_key(source)
        yield Finding(
            policy.span("rules", index, "from", position, key),
            f"rule {index + 1} of AccessPolicy {policy.model.metadata.name!r} admits any mesh "
            "identity ('*') without a justification",
            "name the callers, or add 'justification: <why every workload may call this>' to the "
            "rule",
        )


@subject_rule("MC404", "namespace-wide-source", Severity.WARNING)
def namespace_wide_source(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """An allow rule admits a whole namespace.

    **What it does.** Reports allow rules with a `namespace` source (other than `*`, which
    MC403 covers); the message says whether it is the service's own namespace or another.

    **Why is this bad.** Every workload in the namespace is admitted, including ones deployed
    later and ones meshc does not know about; a compromise of any of them reaches this
    service. Opening *another* team's namespace hands the decision of who may call you to
    whoever deploys there.

    **Example.** `- from: [{namespace: frontend}]`

    **Use instead.** Name the calling services: `from: [{service: frontend/web}]`.
    """
    view = subject.view
    for policy, index, r, position, source in subject_sources(subject):
        if r.action != "allow" or not source.namespace or source.namespace == "*":
            continue
        home = view.key.namespace if view else policy.model.metadata.namespace
        server = str(view.key) if view else policy.model.spec.service
        whose = "its own namespace" if source.namespace == home else "another namespace"
        yield Finding(
            policy.span("rules", index, "from", position, "namespace"),
            f"rule {index + 1} admits every workload in {whose} {source.namespace!r} to "
            f"{server}, including ones deployed later",
            "name the calling services instead (from: [{service: ns/name}])",
        )


@subject_rule("MC405", "policy-on-port-without-protocol", Severity.WARNING, istio="IST0118")
def policy_on_port_without_protocol(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A service with an AccessPolicy has a port without a `protocol`.

    **What it does.** For every service that has at least one AccessPolicy, reports each port
    with no `protocol` (http, http2, grpc or tcp), at the port.

    **Why is this bad.** Without a declared protocol Istio must guess (protocol sniffing,
    IST0118 PortNameIsNotUnderNamingConvention), and on connections it treats as plain TCP
    the HTTP conditions of an AuthorizationPolicy cannot be evaluated: an allow rule with
    methods, paths or headers then matches nothing, and a deny rule with them denies the
    whole connection. Whether a rule works then depends on a guess.

    **Example.** `ports: [{name: web, port: 9080}]` on a service whose policy allows
    `to: {methods: [GET]}`.

    **Use instead.** `ports: [{name: web, port: 9080, protocol: http}]`.
    """
    view = subject.view
    if view is not None and view.policies:
        http_rules = any(
            r.to.methods or r.to.paths or r.headers
            for policy in view.policies
            for r in policy.model.spec.rules
        )
        consequence = (
            "its policy's methods, paths and headers may not be enforced"
            if http_rules
            else "Istio has to guess the protocol its policy applies to"
        )
        for index, port in enumerate(view.spec.ports):
            if port.protocol is not None:
                continue
            yield Finding(
                view.intent.span("ports", index),
                f"port {port.name!r} ({port.port}) of {view.key} has no protocol, but "
                f"{view.key} has an AccessPolicy: {consequence}",
                "declare the protocol: protocol: http, http2, grpc or tcp",
            )


@rule("MC406", "identity-rules-without-strict-mtls", Severity.WARNING)
def identity_rules_without_strict_mtls(ctx: LintContext) -> Iterable[Finding]:
    """An AccessPolicy matches callers by identity while its service still accepts plaintext.

    This rule depends on the evaluation time (an exception or permissive period ends).

    **What it does.** Reports every AccessPolicy whose service is not under strict mTLS at the
    evaluation time: the mesh is permissive until a date still ahead, or the Mesh lists a
    live mTLS exception for the service.

    **Why is this bad.** Every source meshc knows (service, namespace, identity, `*`, the
    ingress gateway) is matched on the caller's mTLS identity. A plaintext request has none:
    allow rules reject it, and — worse — deny rules do not match it, so a plaintext client
    walks past a deny.

    **Example.** `mtls: {mode: permissive, until: 2027-01-31}` in the Mesh together with
    AccessPolicies that deny a namespace.

    **Use instead.** Finish the migration and make mTLS strict for the service; keep
    exceptions short and only for services whose policy does not depend on a deny.
    """
    model = ctx.model
    for view, reason in plaintext_views(model, ctx.now):
        for policy in view.policies:
            yield _plaintext_finding(policy, view, reason, ctx.now)


def _plaintext_finding(policy: Policy, view: ServiceView, reason: str, now: datetime) -> Finding:
    denies = any(r.action == "deny" for r in policy.model.spec.rules)
    effect = (
        "plaintext requests carry no identity, so its deny rules do not stop them"
        if denies
        else "plaintext requests carry no identity, so its rules cannot admit them"
    )
    return Finding(
        policy.span("service"),
        f"AccessPolicy {policy.model.metadata.name!r} matches callers of {view.key} by "
        f"identity, but {reason} ({evaluated_at(now)}): {effect}",
        "make mTLS strict for this service (end the permissive period or the exception)",
    )


_CALL_HINTS = {
    "default-deny": "write an AccessPolicy for {server} that allows {client}",
    "no-rule": "add a rule to {server}'s AccessPolicy: from: [{{service: {short}}}]",
    "denied": "narrow the deny rule, or remove the call from calls:",
}


@subject_rule("MC407", "declared-call-denied", Severity.ERROR)
def declared_call_denied(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A service declares a call (`calls:`) that the called service's access rules deny.

    **What it does.** Decides every declared call the way the server's proxy will: default
    deny with no AccessPolicy, no allow rule admitting the caller, or a deny rule covering
    the caller; the message says which.

    **Why is this bad.** The client gets a route to the server (it declared the call) and
    every request is refused with 403 by the server's RBAC filter. The two sides of the
    intent disagree, and the first to notice is production traffic.

    **Example.** `productpage` declares `calls: [reviews]`, but the AccessPolicy of `reviews`
    only allows `from: [{service: ratings}]`.

    **Use instead.** Allow the caller in the server's AccessPolicy
    (`from: [{service: productpage}]`), or remove the call if it is not needed.
    """
    model = ctx.model
    client = subject.view
    if client is not None:
        for index, target in enumerate(client.calls):
            server = model.services.get(target)
            if server is None:
                continue
            decision = decide_call(client, server, model)
            if decision.allowed:
                continue
            template = _CALL_HINTS.get(decision.verdict, "allow the call, or remove it")
            yield Finding(
                client.intent.span("calls", index),
                f"{client.key} calls {server.key}, which will deny it: {decision.reason}",
                template.format(
                    server=server.key,
                    client=client.key,
                    short=client.key.short(server.key.namespace),
                ),
            )


@subject_rule("MC408", "unused-allow", Severity.INFO)
def unused_allow(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """An allow rule admits a service that does not declare the call.

    **What it does.** For every allow rule with a `service` source, checks that the named
    service lists the policy's service in its `calls:`.

    **Why is this bad.** No client uses this allow: a proxy only routes to what its service
    declares, so the access is unused today — but it stays open, and the allowed graph is
    wider than the effective one. Often a leftover after a call was removed.

    **Example.** `reviews` allows `from: [{service: details}]`, but `details` has no
    `calls: [reviews]`.

    **Use instead.** Remove the source, or add the call to the client's `calls:`.
    """
    model = ctx.model
    server = subject.view
    for policy, index, r, position, source in subject_sources(subject):
        if r.action != "allow" or not source.service or source.service == "*":
            continue
        client = model.service(source.service, policy.model.metadata.namespace)
        if server is None or client is None or server.key in client.calls:
            continue
        yield Finding(
            policy.span("rules", index, "from", position, "service"),
            f"no client uses this allow: {client.key} does not declare a call to {server.key}",
            f"remove the source, or add {server.key.short(client.key.namespace)} to the "
            f"calls: of {client.key}",
        )


@subject_rule("MC409", "header-as-authentication", Severity.WARNING)
def header_as_authentication(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """An allow rule with broad sources relies on a request header to decide who may call.

    **What it does.** Reports allow rules with `headers` conditions and at least one broad
    source — `*`, a namespace, or the ingress gateway (which forwards requests from outside).

    **Why is this bad.** A request header is a value the caller writes. With broad sources
    the header is the only thing separating the intended callers from everyone else, so any
    workload in the namespace — or anyone on the internet, through the gateway — can send
    `x-role: admin` and pass. Headers are fine for routing, not for authentication.

    **Example.**
    ```yaml
    - from: [{namespace: bookinfo}]
      headers: {x-internal: ["true"]}
    ```

    **Use instead.** Identify the callers by identity (`from: [{service: productpage}]`), or
    validate a signed token (JWT) at the gateway.
    """
    model = ctx.model
    for policy in subject.policies:
        namespace = policy.model.metadata.namespace
        for index, r in enumerate(policy.model.spec.rules):
            if r.action != "allow" or not r.headers:
                continue
            broad = [b for b in (_broadness(s, namespace, model) for s in r.from_) if b]
            if not broad:
                continue
            name = sorted(r.headers)[0]
            yield Finding(
                policy.key_span("rules", index, "headers", name),
                f"rule {index + 1} admits {broad[0]} and tells them apart only by the request "
                f"header {name!r}, a value the caller controls",
                "identify callers by identity (from: [{service: ...}]), not by a header",
            )


def _broadness(source: Source, namespace: str, model: MeshModel) -> str | None:
    """How a broad source reads in a message; None for a source naming one identity."""
    if source.ingress_gateway:
        return "the ingress gateway (requests from outside the mesh)"
    principal = principal_of(source, namespace, model)
    if principal.kind == "any":
        return "any mesh identity"
    if principal.kind == "namespace":
        return f"every workload in namespace {principal.value!r}"
    return None


@subject_rule("MC412", "shadow-allows-every-identity", Severity.INFO)
def shadow_allows_every_identity(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A service whose AccessPolicies are all in shadow mode admits every mesh identity.

    **What it does.** Reports a service that has AccessPolicies, none of them enforced.

    **Why is this bad.** Shadow mode only counts and logs what the rules would deny; the
    live decision is "any authenticated caller", so while it lasts the service is as open
    as a mesh without policies. That is the point of a trial, and easy to forget.

    **Example.** `mode: shadow` on the only AccessPolicy of `payments`.

    **Use instead.** Switch the policy to `mode: enforce` once its logs show no needed
    caller would be denied.
    """
    if subject.view is None or not subject.policies:
        return
    if all(policy.model.spec.mode == "shadow" for policy in subject.policies):
        first = min(subject.policies, key=lambda policy: policy.ref)
        yield Finding(
            first.span("mode"),
            f"{subject.key}: every AccessPolicy is in shadow mode, so every mesh identity "
            "may call it while the rules are only logged",
            "set mode: enforce once the shadow logs show no needed caller would be denied",
        )
