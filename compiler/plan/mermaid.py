"""The changed part of the access graph as a mermaid flowchart (GitHub renders it).

Drawn by `compiler.graphview` (the renderer `meshc graph` uses), so a plan's picture and
the whole-mesh picture look alike. Nodes are those a changed edge touches; added edges are
green, removed ones red and dashed, unchanged edges between those nodes plain, for context.
"""

from __future__ import annotations

from compiler.graphview import EdgeStyle, ViewEdge, mermaid


def changed_graph(
    added: list[dict[str, str]],
    removed: list[dict[str, str]],
    context: list[dict[str, str]],
) -> str | None:
    """Edges are the JSON document's access edges (source, sourceKind, server, operation)."""
    if not added and not removed:
        return None
    edges = [_view(e, "added", "+ ") for e in added] + [_view(e, "removed", "− ") for e in removed]
    touched = {node for edge in edges for node in (edge.source, edge.target)}
    for edge in context:
        drawn = _view(edge, _context_style(edge), "")
        if drawn.source in touched and drawn.target in touched:
            edges.append(drawn)
    return mermaid(edges)


def _view(edge: dict[str, str], style: EdgeStyle, sign: str) -> ViewEdge:
    label = edge["operation"]
    if edge.get("action") == "deny":
        label = "DENY " + label
    if edge.get("mode") not in (None, "enforce"):
        label += f" ({edge['mode']})"
    return ViewEdge(_node(edge["source"], edge["sourceKind"]), edge["server"], sign + label, style)


def _context_style(edge: dict[str, str]) -> EdgeStyle:
    if edge.get("action") == "deny":
        return "deny"
    mode = edge.get("mode")
    return "shadow" if mode == "shadow" else "default" if mode == "default" else "allow"


def _node(value: str, kind: str) -> str:
    """Node names as `meshc graph` writes them (`ns/name`, `ingress-gateway`, `namespace:x`)."""
    if kind == "any":
        return "* (any mesh identity)"
    if kind == "ingress":
        return value
    if kind in ("namespace", "identity"):
        return f"{kind}:{value}"
    return value
