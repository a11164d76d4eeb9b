"""Mesh → PeerAuthentication: STRICT mesh-wide, plus live, time-boxed permissive exceptions.

A permissive setting is only ever a migration window: once its `until` has passed (at
the compilation's `now`) it is simply not lowered, so the mesh falls back to STRICT on
the next reconcile while lint asks for the leftover to be removed from Git.
"""

from __future__ import annotations

from datetime import datetime

from compiler.lower.istio.common import SECURITY, LowerContext, Obj, new_object, resolve_service

MESH_WIDE_NAME = "default"
"""Istio's convention: the mesh-wide policy is `default` in the root namespace."""


def lower_peer_authentications(ctx: LowerContext) -> list[Obj]:
    return [mesh_wide(ctx), *exceptions(ctx)]


def _live(until: datetime | None, now: datetime) -> bool:
    return until is not None and until > now


def mesh_wide(ctx: LowerContext) -> Obj:
    settings = ctx.model.settings
    permissive = settings.mtls.mode == "permissive" and _live(settings.mtls.until, ctx.now)
    obj = new_object(
        ctx,
        api_version=SECURITY,
        kind="PeerAuthentication",
        name=MESH_WIDE_NAME,
        namespace=settings.root_namespace,
        source=ctx.mesh_source,
    )
    obj["spec"] = {"mtls": {"mode": "PERMISSIVE" if permissive else "STRICT"}}
    return obj


def exceptions(ctx: LowerContext) -> list[Obj]:
    """One workload-scoped PERMISSIVE PeerAuthentication per live exception."""
    out: dict[tuple[str, str], Obj] = {}
    for exception in ctx.model.settings.mtls.exceptions:
        if not _live(exception.until, ctx.now):
            continue
        view = resolve_service(ctx, exception.service, ctx.mesh_namespace)
        if view is None:
            continue
        obj = new_object(
            ctx,
            api_version=SECURITY,
            kind="PeerAuthentication",
            name=f"{view.key.name}-permissive",
            namespace=view.key.namespace,
            source=ctx.mesh_source,
        )
        obj["spec"] = {
            "selector": {"matchLabels": dict(view.selector)},
            "mtls": {"mode": "PERMISSIVE"},
        }
        out.setdefault((view.key.namespace, view.key.name), obj)
    return [out[key] for key in sorted(out)]
