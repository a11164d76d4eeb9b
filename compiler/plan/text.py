"""The plan as plain text for a terminal (rendered from the JSON document)."""

from __future__ import annotations

from typing import Any

_NO_EDGES: dict[str, list[dict[str, str]]] = {"added": [], "removed": []}
"""A document written before the egress section existed has none."""


def render_text(doc: dict[str, Any]) -> str:
    out: list[str] = [_title(doc), f"evaluated at {doc['now']}", ""]
    for note in doc["notes"]:
        out.append(f"note: {note}")
    for side in ("base", "head"):
        if not doc[side]["compiles"]:
            out.extend(_broken(side, doc[side]))
    if doc["notes"]:
        out.append("")
    if doc["refusals"]:
        out.append(f"REFUSED ({len(doc['refusals'])}): head must not be applied")
        out.extend(f"  ✗ {r}" for r in doc["refusals"])
        out.append("")
    meaning = doc["meaning"]
    if meaning is None:
        return "\n".join([*out, summary_line(doc)]).rstrip() + "\n"
    if doc["riskFlags"]:
        out.append(f"Risk flags ({len(doc['riskFlags'])}):")
        out.extend(
            f"  {'-' if f.get('severity') == 'info' else '!'} {f['code']}: {f['message']}"
            for f in doc["riskFlags"]
        )
        out.append("")
    if doc["head"]["findings"]:
        out.extend(
            _findings(f"head's lint findings ({len(doc['head']['findings'])}):", doc["head"])
        )
        out.append("")
    out.extend(_edges("Access (allowed graph)", meaning["allowed"]))
    out.extend(
        _edges("Access (effective graph: declared calls that are allowed)", meaning["effective"])
    )
    out.extend(
        _edges(
            "Egress (calls outside the mesh, through Externals)", meaning.get("egress", _NO_EDGES)
        )
    )
    out.extend(_changes("Traffic", [c["text"] for c in meaning["traffic"]]))
    out.extend(_changes("Resilience", [c["text"] for c in meaning["resilience"]]))
    out.extend(
        _changes("Mesh (mTLS, default action, settings)", [c["text"] for c in meaning["mesh"]])
    )
    out.extend(_changes("Trust (CA anchors and issuer)", [c["text"] for c in meaning["trust"]]))
    out.extend(_resources(doc["resources"]))
    out.append(summary_line(doc))
    return "\n".join(out).rstrip() + "\n"


def _title(doc: dict[str, Any]) -> str:
    return f"meshc plan: base {_rev(doc['base'])} → head {_rev(doc['head'])}"


def _rev(side: dict[str, Any]) -> str:
    commit = side["commit"]
    return f"{side['ref']} ({commit[:12]})" if commit else str(side["ref"])


def _broken(name: str, side: dict[str, Any]) -> list[str]:
    return _findings(f"{name} ({side['ref']}) does not compile; its findings:", side)


def _findings(title: str, side: dict[str, Any]) -> list[str]:
    lines = [title]
    for f in side["findings"]:
        lines.append(
            f"  {f['file']}:{f['line']}:{f['column']}: {f['severity']}[{f['code']}] {f['message']}"
        )
        if f["hint"]:
            lines.append(f"      = help: {f['hint']}")
    return lines


def _edges(title: str, edges: dict[str, list[dict[str, str]]]) -> list[str]:
    if not edges["added"] and not edges["removed"]:
        return []
    lines = [f"{title}:"]
    lines.extend(f"  + {e['text']}" for e in edges["added"])
    lines.extend(f"  - {e['text']}" for e in edges["removed"])
    return [*lines, ""]


def _changes(title: str, texts: list[str]) -> list[str]:
    if not texts:
        return []
    return [f"{title}:", *(f"  ~ {t}" for t in texts), ""]


_SIGN = {"created": "+", "changed": "~", "deleted": "-"}


def _resources(resources: list[dict[str, Any]] | None) -> list[str]:
    if resources is None:
        return ["Resources: not compared (see notes)", ""]
    if not resources:
        return []
    lines = ["Resources:"]
    for change in resources:
        lines.append(f"  {_SIGN[change['action']]} {change['id']} ({change['action']})")
        lines.extend(f"      {line}" for line in change["diff"].splitlines())
    return [*lines, ""]


def summary_line(doc: dict[str, Any]) -> str:
    if doc["meaning"] is None:
        return "Plan: not computed (head does not compile)"
    s = doc["summary"]
    if not doc["changed"]:
        return "Plan: no changes"
    return (
        f"Plan: {s['created']} to create, {s['changed']} to change, {s['deleted']} to delete; "
        f"access +{s['allowedAdded']}/-{s['allowedRemoved']} allowed, "
        f"+{s['effectiveAdded']}/-{s['effectiveRemoved']} effective; "
        f"{s['trafficChanges']} traffic, {s['resilienceChanges']} resilience, "
        f"{s['meshChanges'] + s['trustChanges']} mesh/trust change(s); "
        f"{s['riskFlags']} risk flag(s)"
    )
