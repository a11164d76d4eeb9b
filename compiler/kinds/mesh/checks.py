"""Lint rules about the Mesh document: its uniqueness, mTLS exceptions and zero-trust default.

Two rules here depend on the evaluation time (`ctx.now`): an `until` date that has passed.
Their messages always state the time they were evaluated at, so a finding that appears
without any commit (the date simply passed) explains itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from compiler.diagnostics import Severity, Span
from compiler.kinds.mesh.model import MeshDocument, MtlsException
from compiler.lint.registry import Finding, LintContext, rule
from compiler.model.mesh import MeshModel, ServiceKey, ServiceView
from compiler.validate import Intent


def format_time(moment: datetime) -> str:
    """`2026-12-31` for a midnight-UTC date, else an RFC 3339 time in UTC (`...Z`)."""
    moment = moment.astimezone(UTC)
    if (moment.hour, moment.minute, moment.second, moment.microsecond) == (0, 0, 0, 0):
        return moment.date().isoformat()
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def evaluated_at(now: datetime) -> str:
    stamp = now.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return f"evaluated at {stamp}"


def exception_key(mesh: Intent[MeshDocument], exception: MtlsException) -> ServiceKey:
    """The service an mTLS exception names: `name` in the Mesh's namespace, or `ns/name`."""
    return ServiceKey.parse(exception.service, mesh.model.metadata.namespace)


def plaintext_reason(model: MeshModel, view: ServiceView, now: datetime) -> str | None:
    """Why `view` still accepts plaintext at `now` (None when mTLS is strict for it).

    Mirrors the Istio lowering: mesh-wide permissive mode and exceptions count only while
    their `until` lies ahead; permissive mode without `until` is not lowered at all.
    """
    mtls = model.settings.mtls
    if mtls.mode == "permissive" and mtls.until is not None and mtls.until > now:
        return f"mTLS is permissive mesh-wide until {format_time(mtls.until)}"
    if model.mesh is None:
        return None
    for exception in mtls.exceptions:
        if exception_key(model.mesh, exception) == view.key and exception.until > now:
            return f"it has a permissive mTLS exception until {format_time(exception.until)}"
    return None


def plaintext_views(model: MeshModel, now: datetime) -> Iterator[tuple[ServiceView, str]]:
    """Every declared service that accepts plaintext at `now`, with `plaintext_reason`:
    all of them while the mesh is permissive, else those with a live exception (so a
    strict mesh costs nothing here, however large)."""
    mtls = model.settings.mtls
    if mtls.mode == "permissive" and mtls.until is not None and mtls.until > now:
        candidates: Iterable[ServiceView] = model.services.values()
    elif model.mesh is None:
        return
    else:
        mesh = model.mesh
        keys = {exception_key(mesh, e) for e in mtls.exceptions if e.until > now}
        candidates = [view for key, view in model.services.items() if key in keys] if keys else ()
    for view in candidates:
        reason = plaintext_reason(model, view, now)
        if reason is not None:
            yield view, reason


@rule("MC208", "unknown-mtls-exception-service", Severity.ERROR, istio="IST0101")
def unknown_exception_service(ctx: LintContext) -> Iterable[Finding]:
    """An mTLS exception names a service that no Service document declares.

    **What it does.** Resolves `spec.mtls.exceptions[].service` of the Mesh (`name` in the
    Mesh document's namespace, `ns/name` elsewhere) against the declared services.

    **Why is this bad.** An exception for an unknown service cannot be lowered to a
    workload-scoped PeerAuthentication: the workload that needed plaintext keeps rejecting
    it, and the stale entry suggests an exception that does not exist. Istio reports unknown
    references as IST0101 (ReferencedResourceNotFound).

    **Example.**
    ```yaml
    kind: Mesh
    spec:
      mtls:
        exceptions: [{service: bookinfo/rating, until: 2027-01-31, reason: legacy client}]
    ```

    **Use instead.** `service: bookinfo/ratings` (always write `ns/name` in the Mesh).
    """
    model = ctx.model
    if model.mesh is None:
        return
    for index, exception in enumerate(model.settings.mtls.exceptions):
        key = exception_key(model.mesh, exception)
        if key not in model.services:
            yield Finding(
                model.mesh.span("mtls", "exceptions", index, "service"),
                f"mTLS exception: service {key} is not declared by any Service",
                "fix the name; write it as namespace/name",
            )


@rule("MC305", "multiple-meshes", Severity.ERROR)
def multiple_meshes(ctx: LintContext) -> Iterable[Finding]:
    """The policy root holds more than one Mesh document.

    **What it does.** Reports every Mesh document after the first (files in path order).

    **Why is this bad.** A policy root describes one mesh. Only the first Mesh document's
    settings are used; the trust domain, mTLS mode or default action written in the others
    are silently ignored.

    **Example.** `mesh.yaml` and `staging/mesh.yaml` under the same root, each with `kind: Mesh`.

    **Use instead.** One Mesh document per policy root; lint other meshes as separate roots.
    """
    meshes = ctx.model.meshes
    if len(meshes) < 2:
        return
    first = meshes[0]
    for extra in meshes[1:]:
        yield Finding(
            extra.doc.span("kind"),
            f"Mesh {extra.model.metadata.name!r}: a second Mesh document; the root already has "
            f"Mesh {first.model.metadata.name!r} at {first.doc.span()}, and only that one is used",
            "keep exactly one Mesh document per policy root",
        )


@rule("MC306", "missing-mesh", Severity.WARNING)
def missing_mesh(ctx: LintContext) -> Iterable[Finding]:
    """The policy root has intents but no Mesh document.

    **What it does.** Reports a policy root with at least one Service, AccessPolicy, Rollout
    or Resilience document and no Mesh document (at the first such document).

    **Why is this bad.** Every mesh-wide setting then takes its default — trust domain
    `cluster.local`, strict mTLS, default deny, root namespace `istio-system` — without any
    reviewed record of it. A Mesh file that was moved or excluded by mistake goes unnoticed.

    **Example.** A root with `reviews.yaml` and `ratings.yaml` only.

    **Use instead.** Add `mesh.yaml` with `kind: Mesh` and the settings written out.
    """
    model = ctx.model
    if model.meshes:
        return
    firsts: list[Intent[Any]] = [
        *(v.intent for v in model.services.values()),
        *model.duplicate_services,
        *model.policies,
        *model.rollouts,
        *model.resilience,
    ]
    if not firsts:
        return
    spans: list[Span] = sorted(i.doc.span() for i in firsts)
    yield Finding(
        spans[0],
        "policy root has no Mesh document, so defaults apply (trust domain cluster.local, "
        "strict mTLS, default deny, root namespace istio-system)",
        "add a mesh.yaml with 'kind: Mesh' that states the mesh-wide settings",
    )


@rule("MC401", "permissive-mtls", Severity.WARNING)
def permissive_mtls(ctx: LintContext) -> Iterable[Finding]:
    """Mesh-wide mTLS is permissive without an `until` date, or its `until` has passed.

    This rule depends on the evaluation time; its message states the time it used.

    **What it does.** Checks `spec.mtls` of the Mesh: `mode: permissive` needs an `until`
    date in the future.

    **Why is this bad.** Permissive mode accepts plaintext from anything that can reach a
    pod: no identity, no encryption, and identity-based rules cannot hold. meshc allows it
    only as a time-boxed migration step, so it lowers permissive mode only while `until`
    lies ahead. Without `until` the setting is not lowered at all (the mesh stays strict and
    the clients it was meant for are refused); once `until` has passed the mesh is strict
    again. Either way the setting in Git does not describe what is deployed.

    **Example.**
    ```yaml
    kind: Mesh
    spec: {mtls: {mode: permissive}}
    ```

    **Use instead.** `mtls: {mode: strict}`; during a migration,
    `mtls: {mode: permissive, until: 2027-01-31}`, or better a per-service exception.
    """
    mesh = ctx.model.mesh
    mtls = ctx.model.settings.mtls
    if mesh is None or mtls.mode != "permissive":
        return
    if mtls.until is None:
        yield Finding(
            mesh.span("mtls", "mode"),
            "mesh-wide mTLS mode permissive has no 'until' date, so it is not lowered: the mesh "
            "stays strict and clients that still send plaintext are refused",
            "time-box the migration with 'until: <date>' (better: a per-service exception), "
            "or use mode: strict",
        )
    elif mtls.until <= ctx.now:
        yield Finding(
            mesh.span("mtls", "until"),
            f"mesh-wide permissive mTLS ended on {format_time(mtls.until)} "
            f"({evaluated_at(ctx.now)}); strict mTLS is lowered instead",
            "remove 'mode: permissive' and 'until' from Git (or set a new date, if the "
            "migration truly is not finished)",
        )


@rule("MC402", "expired-mtls-exception", Severity.WARNING)
def expired_exception(ctx: LintContext) -> Iterable[Finding]:
    """A permissive mTLS exception is past its `until` date.

    This rule depends on the evaluation time; its message states the time it used.

    **What it does.** Compares each `spec.mtls.exceptions[].until` with the evaluation time.

    **Why is this bad.** An expired exception is no longer lowered: the service is strict
    again, and any client still sending plaintext is now refused. The entry left in Git
    misleads reviewers about what is deployed and invites someone to "extend" it by editing
    the date instead of finishing the migration.

    **Example.**
    ```yaml
    mtls:
      exceptions: [{service: bookinfo/ratings, until: 2026-01-31, reason: legacy client}]
    ```

    **Use instead.** Remove the exception from Git once the migration is done.
    """
    model = ctx.model
    if model.mesh is None:
        return
    for index, exception in enumerate(model.settings.mtls.exceptions):
        if exception.until > ctx.now:
            continue
        yield Finding(
            model.mesh.span("mtls", "exceptions", index, "until"),
            f"mTLS exception for {exception_key(model.mesh, exception)} expired on "
            f"{format_time(exception.until)} ({evaluated_at(ctx.now)}); it is no longer lowered",
            "remove the exception from Git; the service is strict mTLS again",
        )


@rule("MC410", "default-allow", Severity.WARNING)
def default_allow(ctx: LintContext) -> Iterable[Finding]:
    """The Mesh sets `defaultAction: allow`, which turns zero trust off.

    **What it does.** Reports `spec.defaultAction: allow` in the Mesh.

    **Why is this bad.** With default allow, every service without an AccessPolicy accepts
    every caller, and a new service is open until someone remembers to write its policy. A
    lateral move from one compromised workload reaches all of them.

    **Example.**
    ```yaml
    kind: Mesh
    spec: {defaultAction: allow}
    ```

    **Use instead.** `defaultAction: deny` (the default), and an AccessPolicy per service that
    allows its known callers.
    """
    mesh = ctx.model.mesh
    if mesh is None or ctx.model.settings.default_action != "allow":
        return
    yield Finding(
        mesh.span("defaultAction"),
        "defaultAction is allow: every service without an AccessPolicy accepts any caller "
        "(zero trust is off)",
        "set defaultAction: deny and give each service an AccessPolicy for its callers",
    )
