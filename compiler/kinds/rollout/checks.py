"""Lint rules about Rollout documents: references, conflicts and traffic shares."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from compiler.diagnostics import Severity
from compiler.kinds.references import undeclared_service
from compiler.kinds.rollout.model import MatchRule, RolloutDocument, StringMatch
from compiler.lint.registry import Finding, subject_rule
from compiler.lint.subjects import Subject, SubjectContext, subject_rollouts, subject_views
from compiler.model.mesh import ServiceView
from compiler.model.methods import is_unrestricted, non_idempotent_methods
from compiler.validate import Intent

RolloutIntent = Intent[RolloutDocument]


def version_hint(view: ServiceView, name: str) -> str:
    """Name the closest declared version, or list them all."""
    declared = sorted(view.spec.versions)
    if not declared:
        return f"declare versions under spec.versions of the Service {view.key}"
    close = difflib.get_close_matches(name, declared, n=1)
    listed = ", ".join(declared)
    if close:
        return f"did you mean {close[0]!r}? {view.key} declares: {listed}"
    return f"use one of the versions {view.key} declares: {listed}, or declare {name!r} there"


def spec_stable(intent: RolloutIntent) -> str:
    return intent.model.spec.stable


def _weights(spec_weights: Iterable[int]) -> str:
    return " + ".join(str(w) for w in spec_weights)


@subject_rule("MC220", "rollout-unknown-service", Severity.ERROR, istio="IST0101")
def rollout_unknown_service(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A Rollout names a service that no Service document declares.

    **What it does.** Resolves `spec.service` of every Rollout (`name` in the Rollout's
    namespace, `ns/name` elsewhere) against the declared services.

    **Why is this bad.** The Rollout is not lowered at all: no VirtualService carries its
    split, so traffic is not shifted the way the author believes. Usually the name is misspelt
    or the namespace is missing. Istio reports the same mistake in routing objects as IST0101
    (ReferencedResourceNotFound).

    **Example.**
    ```yaml
    kind: Rollout
    metadata: {name: reviews, namespace: bookinfo}
    spec: {service: review, stable: v1, split: {v1: 90, v3: 10}}
    ```

    **Use instead.** `service: reviews` (or `service: other-ns/reviews`).
    """
    yield from undeclared_service(ctx.model, subject.rollouts, "Rollout")


@subject_rule("MC222", "rollout-unknown-version", Severity.ERROR, istio="IST0101")
def rollout_unknown_version(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A Rollout's `stable`, `canary`, `split` key or `match[].version` is not a declared version.

    **What it does.** Checks every version a Rollout routes to against the `versions` of its
    Service (the subsets of the emitted DestinationRule). Mirror targets are MC504.

    **Why is this bad.** Istio routes to a subset that does not exist with `503 NR`
    (no healthy upstream); the share of traffic given to it fails. Istio reports a route to a
    missing subset as IST0101 (ReferencedResourceNotFound).

    **Example.**
    ```yaml
    spec: {service: reviews, stable: v1, split: {v1: 90, v4: 10}}   # reviews declares v1-v3
    ```

    **Use instead.** `split: {v1: 90, v3: 10}`, or declare `v4` in the Service first.
    """
    for intent, view in subject_rollouts(subject):
        spec = intent.model.spec
        declared = view.spec.versions
        named: list[tuple[str, str, tuple[str | int, ...], bool]] = [
            ("stable", spec.stable, ("stable",), False)
        ]
        if spec.canary is not None:
            named.append(("canary", spec.canary, ("canary",), False))
        named.extend(("split", v, ("split", v), True) for v in (spec.split or {}))
        named.extend(
            (f"match[{i}]", m.version, ("match", i, "version"), False)
            for i, m in enumerate(spec.match)
        )
        for role, version, path, is_key in named:
            if version in declared:
                continue
            yield Finding(
                intent.key_span(*path) if is_key else intent.span(*path),
                f"{view.key}: {role} version {version!r} is not declared by the Service",
                version_hint(view, version),
            )


@subject_rule("MC320", "duplicate-rollout", Severity.ERROR, istio="IST0109")
def duplicate_rollout(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """Two Rollouts target the same service.

    **What it does.** Reports every Rollout for a service after the first (in file order).

    **Why is this bad.** A host gets exactly one VirtualService; two Rollouts would give two
    contradicting splits, and which one wins would depend on file order. Istio reports two
    VirtualServices for one host as IST0109 (ConflictingMeshGatewayVirtualServiceHosts).

    **Example.** `reviews-canary.yaml` and `reviews-ab.yaml` both with `service: reviews`.

    **Use instead.** One Rollout per service holding the split, the match rules and the mirror.
    """
    for view in subject_views(subject):
        if len(view.rollouts) < 2:
            continue
        first = view.rollouts[0]
        for extra in view.rollouts[1:]:
            yield Finding(
                extra.span("service"),
                f"{view.key}: a second Rollout for this service (the first is {first.ref})",
                "merge both into one Rollout; a service has one traffic policy",
            )


def _header_key(name: str) -> str:
    return name.lower()


_REGEX_META = frozenset(".^$*+?{}[]\\|()")


def regex_as_prefix(pattern: str) -> tuple[str, bool] | None:
    """A regex that is a plain literal (`jason`) or a literal then `.*` (`beta-.*`), as
    (literal, is_prefix); None for anything else.

    Match rules come from the repository under review, and lint also runs in the
    reconciler: user regexes are never executed (catastrophic backtracking would stall
    both), only these two shapes are understood, so coverage is under-estimated, never
    over-estimated.
    """
    body, is_prefix = (pattern[:-2], True) if pattern.endswith(".*") else (pattern, False)
    if any(ch in _REGEX_META for ch in body):
        return None
    return body, is_prefix


def _as_simple(match: StringMatch) -> tuple[str, bool] | None:
    """(literal, is_prefix) for exact and prefix matches and simple regexes."""
    if match.exact is not None:
        return match.exact, False
    if match.prefix is not None:
        return match.prefix, True
    return regex_as_prefix(match.regex or "")


def string_covers(outer: StringMatch, inner: StringMatch) -> bool:
    """Whether every value `inner` matches is also matched by `outer` (a safe under-estimate)."""
    if outer.regex is not None and outer.regex == inner.regex:
        return True
    wide, narrow = _as_simple(outer), _as_simple(inner)
    if wide is None or narrow is None:
        return False
    (outer_text, outer_prefix), (inner_text, inner_prefix) = wide, narrow
    if outer_prefix:
        return inner_text.startswith(outer_text)
    return not inner_prefix and inner_text == outer_text


def _conditions_cover(
    outer: dict[str, StringMatch], inner: dict[str, StringMatch], *, fold_case: bool
) -> bool:
    """Every condition of `outer` is implied by some condition of `inner` on the same name."""
    key = _header_key if fold_case else str
    by_name: dict[str, list[StringMatch]] = {}
    for name, match in inner.items():
        by_name.setdefault(key(name), []).append(match)
    return all(
        any(string_covers(match, candidate) for candidate in by_name.get(key(name), []))
        for name, match in outer.items()
    )


def rule_covers(earlier: MatchRule, later: MatchRule) -> bool:
    """Whether every request `later` matches is already taken by `earlier`."""
    return _conditions_cover(earlier.headers, later.headers, fold_case=True) and _conditions_cover(
        earlier.cookies, later.cookies, fold_case=False
    )


@subject_rule("MC321", "unreachable-match", Severity.WARNING, istio="IST0130")
def unreachable_match(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """An A/B match rule can never fire because an earlier rule matches everything it matches.

    **What it does.** Match rules are tried in order and the first that matches wins. A rule
    is reported when an earlier rule's conditions are implied by its own (same headers or
    cookies, with an equal or wider exact or prefix match; a regex counts when it is the same
    regex, a plain literal, or a literal followed by `.*`). Header names compare
    case-insensitively, cookie names exactly. Istio reports the same as IST0130
    (VirtualServiceUnreachableRule) and IST0131 (VirtualServiceIneffectiveMatch).

    **Why is this bad.** The later rule is dead: the users it was written for are routed by
    the earlier rule, usually to another version than intended.

    **Example.**
    ```yaml
    match:
    - {headers: {end-user: {prefix: j}}, version: v2}
    - {headers: {end-user: {exact: jason}}, version: v3}   # never fires: "jason" starts with "j"
    ```

    **Use instead.** Put the more specific rule first:
    ```yaml
    match:
    - {headers: {end-user: {exact: jason}}, version: v3}
    - {headers: {end-user: {prefix: j}}, version: v2}
    ```
    """
    for intent, view in subject_rollouts(subject):
        rules = intent.model.spec.match
        for j, later in enumerate(rules):
            for i, earlier in enumerate(rules[:j]):
                if rule_covers(earlier, later):
                    yield Finding(
                        intent.span("match", j),
                        f"{view.key}: match[{j}] can never fire; match[{i}] already takes every "
                        f"request it matches (and sends it to {earlier.version})",
                        f"remove match[{j}], or move it before match[{i}] "
                        "if it is the more specific rule",
                    )
                    break


@subject_rule("MC501", "split-not-100", Severity.ERROR)
def split_not_100(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A Rollout's `split` weights do not add up to 100.

    **What it does.** Sums the weights of `spec.split`.

    **Why is this bad.** Istio rejects weighted destinations that do not sum to 100 (older
    versions silently normalised them), so the intended shares are never what runs.

    **Example.** `split: {v1: 90, v3: 5}`

    **Use instead.** `split: {v1: 95, v3: 5}`
    """
    for intent, view in subject_rollouts(subject):
        split = intent.model.spec.split
        if split is None:
            continue
        if not split:
            yield Finding(
                intent.span("split"),
                f"{view.key}: split is empty, so no version gets traffic",
                f"give the weights, e.g. {{{spec_stable(intent)}: 100}}",
            )
            continue
        total = sum(split.values())
        if total != 100:
            yield Finding(
                intent.span("split"),
                f"{view.key}: split weights sum to {total} ({_weights(split.values())}), not 100",
                "adjust the weights so they add up to 100",
            )


@subject_rule("MC502", "steps-not-progressive", Severity.ERROR)
def steps_not_progressive(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """Progressive `steps` go backwards, or do not end with the canary at 100 %.

    **What it does.** Checks that step weights never decrease and that the last step sends
    100 % of the traffic to the canary. (Weights outside 0-100 are MC503.)

    **Why is this bad.** A rollout that ends below 100 never completes: the canary and the
    stable version share traffic forever. A step lower than the one before silently moves
    users back to the old version in the middle of a rollout.

    **Example.** `steps: [{weight: 10, pause: 5m}, {weight: 5}, {weight: 50}]`

    **Use instead.**
    `steps: [{weight: 5, pause: 5m}, {weight: 10, pause: 5m}, {weight: 50}, {weight: 100}]`
    """
    for intent, view in subject_rollouts(subject):
        steps = intent.model.spec.steps
        if steps is None:
            continue
        if not steps:
            yield Finding(
                intent.span("steps"),
                f"{view.key}: steps is empty, so the canary never takes traffic",
                "add steps ending with {weight: 100}, or use a fixed split",
            )
            continue
        for i in range(1, len(steps)):
            before, now = steps[i - 1].weight, steps[i].weight
            if now < before and 0 <= now <= 100 and 0 <= before <= 100:
                yield Finding(
                    intent.span("steps", i, "weight"),
                    f"{view.key}: step {i} lowers the canary weight from {before} to {now}",
                    "make the weights non-decreasing; "
                    "an abort (back to stable) is automatic on failure",
                )
        last = steps[-1].weight
        if 0 <= last < 100:
            yield Finding(
                intent.span("steps", len(steps) - 1, "weight"),
                f"{view.key}: the last step sends {last}% to the canary, "
                "so the rollout never completes",
                "end the steps with {weight: 100}",
            )


@subject_rule("MC503", "weight-out-of-range", Severity.ERROR)
def weight_out_of_range(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A split or step weight is outside 0-100.

    **What it does.** Checks every `split` value and every `steps[].weight`.

    **Why is this bad.** A weight is a percentage of requests; a negative weight or one above
    100 has no meaning, and Istio rejects it.

    **Example.** `steps: [{weight: 10}, {weight: 150}]`

    **Use instead.** `steps: [{weight: 10}, {weight: 100}]`
    """
    for intent, view in subject_rollouts(subject):
        spec = intent.model.spec
        for version, weight in (spec.split or {}).items():
            if not 0 <= weight <= 100:
                yield Finding(
                    intent.span("split", version),
                    f"{view.key}: split weight {weight} for {version} is outside 0-100",
                    "write a percentage between 0 and 100",
                )
        for i, step in enumerate(spec.steps or []):
            if not 0 <= step.weight <= 100:
                yield Finding(
                    intent.span("steps", i, "weight"),
                    f"{view.key}: step {i} weight {step.weight} is outside 0-100",
                    "write a percentage between 0 and 100",
                )


@subject_rule("MC504", "mirror-unknown-version", Severity.ERROR, istio="IST0101")
def mirror_unknown_version(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A Rollout mirrors to a version its service does not declare.

    **What it does.** Checks `mirror.version` against the Service's `versions`.

    **Why is this bad.** The mirror points at a subset that does not exist, so nothing is
    mirrored and the shadow test the author relies on never runs. Istio reports a missing
    subset as IST0101 (ReferencedResourceNotFound).

    **Example.** `mirror: {version: v4}` while reviews declares v1-v3.

    **Use instead.** `mirror: {version: v3}`, or declare `v4` in the Service first.
    """
    for intent, view in subject_rollouts(subject):
        mirror = intent.model.spec.mirror
        if mirror is not None and mirror.version not in view.spec.versions:
            yield Finding(
                intent.span("mirror", "version"),
                f"{view.key}: mirror version {mirror.version!r} is not declared by the Service",
                version_hint(view, mirror.version),
            )


@subject_rule("MC505", "mirror-non-idempotent", Severity.WARNING)
def mirror_non_idempotent(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A Rollout mirrors a service that accepts non-idempotent methods, without opting in.

    **What it does.** Works out which methods can reach the service from its AccessPolicies
    (all of them when no enforced AccessPolicy restricts it) and reports a `mirror` without
    `allowNonIdempotent: true` when POST, PATCH or CONNECT are among them.

    **Why is this bad.** A mirrored request really runs on the mirror version: a mirrored
    POST creates the order, charges the card or sends the mail a second time.

    **Example.**
    ```yaml
    mirror: {version: v3}    # the service's AccessPolicy allows POST /orders
    ```

    **Use instead.** Restrict the service to idempotent methods, or confirm that the
    mirror's side effects are isolated: `mirror: {version: v3, allowNonIdempotent: true}`.
    """
    model = ctx.model
    for intent, view in subject_rollouts(subject):
        mirror = intent.model.spec.mirror
        if mirror is None or mirror.allow_non_idempotent:
            continue
        methods = non_idempotent_methods(view, model)
        if not methods:
            continue
        why = (
            "no enforced AccessPolicy restricts its methods"
            if is_unrestricted(view)
            else "its AccessPolicies allow " + ", ".join(sorted(methods))
        )
        yield Finding(
            intent.span("mirror"),
            f"{view.key}: mirroring to {mirror.version} repeats non-idempotent requests ({why})",
            f"set mirror.allowNonIdempotent: true if {mirror.version}'s side effects are isolated, "
            "or allow only idempotent methods",
        )


@subject_rule("MC506", "mirror-percentage-out-of-range", Severity.ERROR)
def mirror_percentage_out_of_range(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A mirror percentage is outside 0-100.

    **What it does.** Checks `mirror.percentage`.

    **Why is this bad.** It is the share of requests copied to the mirror; Istio's
    `mirrorPercentage` rejects values outside 0-100.

    **Example.** `mirror: {version: v3, percentage: 150}`

    **Use instead.** `mirror: {version: v3, percentage: 50}`
    """
    for intent, view in subject_rollouts(subject):
        mirror = intent.model.spec.mirror
        if mirror is not None and not 0 <= mirror.percentage <= 100:
            yield Finding(
                intent.span("mirror", "percentage"),
                f"{view.key}: mirror percentage {mirror.percentage:g} is outside 0-100",
                "write the share of requests to copy, between 0 and 100",
            )


@subject_rule("MC507", "header-match-on-tcp", Severity.ERROR)
def header_match_on_tcp(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A Rollout has header/cookie match rules but every port of the service is `tcp`.

    **What it does.** Checks the protocols of the service's ports when `match` rules exist.

    **Why is this bad.** On a TCP port the proxy forwards bytes and never parses HTTP, so it
    cannot see headers or cookies: the A/B rules are never applied and every user gets the
    split.

    **Example.** `ports: [{name: db, port: 5432, protocol: tcp}]` with
    `match: [{headers: {end-user: {exact: jason}}, version: v2}]`

    **Use instead.** Declare the port as `http`, `http2` or `grpc` if it carries HTTP, or use
    a weighted `split` alone for TCP services.
    """
    for intent, view in subject_rollouts(subject):
        if not intent.model.spec.match:
            continue
        protocols = [port.protocol for port in view.spec.ports]
        if protocols and all(p == "tcp" for p in protocols):
            yield Finding(
                intent.span("match"),
                f"{view.key}: header/cookie match rules on a service whose ports are all tcp "
                "(a TCP proxy cannot see headers)",
                "declare the port protocol as http, http2 or grpc, or remove the match rules",
            )


def live_versions(intent: RolloutIntent) -> dict[str, str]:
    """Versions that take a share of the default route at some point, with why."""
    spec = intent.model.spec
    if spec.split is not None:
        return {v: f"split weight {w}" for v, w in spec.split.items() if w > 0}
    if spec.steps:
        live: dict[str, str] = {}
        if any(step.weight < 100 for step in spec.steps):
            live[spec.stable] = "stable during the steps"
        if spec.canary is not None and any(step.weight > 0 for step in spec.steps):
            live[spec.canary] = "canary of the steps"
        return live
    return {spec.stable: "stable (all default traffic)"}


@subject_rule("MC508", "mirror-into-live-version", Severity.WARNING)
def mirror_into_live_version(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A Rollout mirrors into a version that already takes live traffic on the same route.

    **What it does.** Compares `mirror.version` with the versions the default route sends
    traffic to (split weights above 0, the stable and canary versions of progressive steps,
    or the stable version when there is neither).

    **Why is this bad.** The mirror copies requests of the default route; a request that
    was routed to the mirror version is then processed there twice. Its load doubles for
    that share, its side effects repeat, and its metrics (which a canary analysis reads)
    count every such request twice, so a shadow test meant to be harmless skews the rollout.

    **Example.**
    ```yaml
    split: {v1: 90, v3: 10}
    mirror: {version: v3}
    ```

    **Use instead.** Mirror into a version without live traffic (`mirror: {version: v4}`
    with v4 outside the split), or drop the mirror once the version takes real traffic.
    """
    for intent, view in subject_rollouts(subject):
        mirror = intent.model.spec.mirror
        if mirror is None:
            continue
        why = live_versions(intent).get(mirror.version)
        if why is not None:
            yield Finding(
                intent.span("mirror", "version"),
                f"{view.key}: mirror target {mirror.version} already takes live traffic ({why}); "
                "requests routed to it are processed twice",
                "mirror into a version outside the live route, "
                f"or drop the mirror to {mirror.version}",
            )


@subject_rule("MC509", "canary-is-stable", Severity.ERROR)
def canary_is_stable(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A progressive Rollout's `canary` is the same version as its `stable`.

    **What it does.** Compares `canary` with `stable`.

    **Why is this bad.** The steps move traffic from a version to itself: the rollout
    "completes" without any user ever reaching the new version, and its analysis gates
    measure the old one. It is nearly always a copy-paste slip when starting a new rollout.

    **Example.** `stable: v1`, `canary: v1`, `steps: [{weight: 10}, {weight: 100}]`

    **Use instead.** `canary: v2` (the version being rolled out).
    """
    for intent, view in subject_rollouts(subject):
        spec = intent.model.spec
        if spec.canary is not None and spec.canary == spec.stable:
            yield Finding(
                intent.span("canary"),
                f"{view.key}: canary {spec.canary} is also the stable version, "
                "so the steps move no traffic",
                "set canary to the version being rolled out",
            )


@subject_rule("MC513", "rollout-analysis-not-evaluated", Severity.INFO)
def rollout_analysis_not_evaluated(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A Rollout step's `analysis` is written, but nothing evaluates it yet.

    **What it does.** Points at every `steps[].analysis` block (success rate, latency).

    **Why is this bad.** A gate that is written but not enforced reads as a safety net
    that is not there: meshc has no rollout engine yet, so a step advances only when the
    rollout state (`--rollout-state FILE` for `meshc render` and `meshc plan`, a mapping of
    `namespace/name` to a step index starting at 0) is edited, whatever the metrics say.

    **Example.**
    ```yaml
    steps: [{weight: 10, analysis: {successRate: 99.5}}, {weight: 100}]
    ```

    **Use instead.** Check the metrics yourself before raising the step in the rollout
    state; keep the `analysis` block as documentation of the gate if you like (this
    finding is information only).
    """
    for intent in subject.rollouts:
        for index, step in enumerate(intent.model.spec.steps or ()):
            if step.analysis is not None:
                yield Finding(
                    intent.span("steps", index, "analysis"),
                    f"Rollout {intent.model.metadata.name}: steps[{index}].analysis is not "
                    "evaluated yet; the step advances only when the rollout state is edited",
                    "check the metrics before raising the step in --rollout-state",
                )
