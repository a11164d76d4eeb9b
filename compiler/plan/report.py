"""Plan output as data: the stable JSON document (docs/plan-json.md) every format reads.

Text and markdown render from this same document, so the three formats cannot disagree.
Secret masking is applied here, once, before any format sees a value.
"""

from __future__ import annotations

from typing import Any

from compiler.diagnostics import Diagnostic
from compiler.plan.engine import Plan, Side
from compiler.plan.mask import mask_text
from compiler.plan.meaning import AccessEdge, CallEdge, ExternalCall, FieldChange, Traffic
from compiler.plan.risk import RiskFlag

SCHEMA_VERSION = 1


def plan_document(plan: Plan) -> dict[str, Any]:
    meaning = plan.meaning
    qualify = meaning.qualify if meaning is not None else False
    resources = None
    if plan.resources is not None:
        resources = [
            {
                "action": change.action,
                "id": str(change.key),
                "group": change.key.group,
                "kind": change.key.kind,
                "namespace": change.key.scope,
                "name": change.key.name,
                "diff": mask_text(change.diff),
            }
            for change in plan.resources
        ]
    document: dict[str, Any] = {
        "version": SCHEMA_VERSION,
        "now": plan.now.isoformat().replace("+00:00", "Z"),
        "base": _side(plan.base),
        "head": _side(plan.head),
        "ok": not plan.failed,
        "changed": plan.changed,
        "summary": _summary(plan),
        "riskFlags": [_risk(flag) for flag in plan.risks],
        "refusals": [mask_text(r) for r in plan.refusals],
        "notes": [mask_text(n) for n in plan.notes],
        "meaning": None,
        "resources": resources,
    }
    if meaning is not None:
        document["meaning"] = {
            "qualified": qualify,
            "allowed": {
                "added": [_access(e, qualify) for e in meaning.allowed_added],
                "removed": [_access(e, qualify) for e in meaning.allowed_removed],
            },
            "effective": {
                "added": [_call(e, qualify) for e in meaning.effective_added],
                "removed": [_call(e, qualify) for e in meaning.effective_removed],
            },
            "egress": {
                "added": [_egress(e, qualify) for e in meaning.egress_added],
                "removed": [_egress(e, qualify) for e in meaning.egress_removed],
            },
            "traffic": [
                {
                    "service": change.service,
                    "before": _traffic(change.before),
                    "after": _traffic(change.after),
                    "text": change.text(qualify=qualify),
                }
                for change in meaning.traffic
            ],
            "resilience": [_field(c) for c in meaning.resilience],
            "mesh": [_field(c) for c in meaning.mesh],
            "trust": [_field(c) for c in meaning.trust],
        }
    return document


def _side(side: Side) -> dict[str, Any]:
    return {
        "ref": side.revision.label,
        "commit": side.revision.commit,
        "compiles": side.compiles,
        "findings": [_finding(d) for d in side.findings],
    }


def _finding(diag: Diagnostic) -> dict[str, Any]:
    return {
        "code": diag.code,
        "severity": diag.severity.label,
        "file": diag.span.file,
        "line": diag.span.line,
        "column": diag.span.col,
        "message": mask_text(diag.message),
        "hint": mask_text(diag.hint),
    }


def _summary(plan: Plan) -> dict[str, int]:
    counts = {"created": 0, "changed": 0, "deleted": 0}
    for change in plan.resources or ():
        counts[change.action] += 1
    meaning = plan.meaning
    return {
        **counts,
        "allowedAdded": len(meaning.allowed_added) if meaning else 0,
        "allowedRemoved": len(meaning.allowed_removed) if meaning else 0,
        "effectiveAdded": len(meaning.effective_added) if meaning else 0,
        "effectiveRemoved": len(meaning.effective_removed) if meaning else 0,
        "trafficChanges": len(meaning.traffic) if meaning else 0,
        "resilienceChanges": len(meaning.resilience) if meaning else 0,
        "meshChanges": len(meaning.mesh) if meaning else 0,
        "trustChanges": len(meaning.trust) if meaning else 0,
        "riskFlags": len(plan.risks),
    }


def _risk(flag: RiskFlag) -> dict[str, str]:
    return {
        "code": flag.code,
        "subject": flag.subject,
        "message": flag.message,
        "severity": flag.severity,
    }


def _access(edge: AccessEdge, qualify: bool) -> dict[str, str]:
    return {
        "source": edge.source,
        "sourceKind": edge.source_kind,
        "server": edge.server,
        "operation": edge.operation,
        "action": edge.action,
        "mode": edge.mode,
        "text": edge.text(qualify=qualify),
    }


def _call(edge: CallEdge, qualify: bool) -> dict[str, str]:
    return {
        "client": edge.client,
        "server": edge.server,
        "operation": edge.operation,
        "text": edge.text(qualify=qualify),
    }


def _egress(call: ExternalCall, qualify: bool) -> dict[str, str]:
    return {
        "client": call.client,
        "external": call.external,
        "destination": call.destination,
        "text": call.text(qualify=qualify),
    }


def _traffic(traffic: Traffic | None) -> dict[str, Any] | None:
    if traffic is None:
        return None
    return {
        "shares": None if traffic.shares is None else {v: s for v, s in traffic.shares if s},
        "match": list(traffic.match),
        "mirror": traffic.mirror,
        "text": traffic.text(),
    }


def _field(change: FieldChange) -> dict[str, Any]:
    return {
        "subject": change.subject,
        "field": change.field,
        "before": change.before,
        "after": change.after,
        "text": change.text(),
    }


def context_edges(plan: Plan) -> list[dict[str, str]]:
    """Unchanged allowed edges (both sides have them), for the graph picture's context."""
    meaning = plan.meaning
    if (
        meaning is None
        or plan.head.meaning is None
        or plan.base.meaning is None
        or not plan.base.compiles
    ):
        return []
    shared = plan.head.meaning.allowed & plan.base.meaning.allowed
    return [_access(e, meaning.qualify) for e in sorted(shared)]
