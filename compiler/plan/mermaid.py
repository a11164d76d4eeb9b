"""The changed part of the access graph as a mermaid flowchart (GitHub renders it).

Nodes are the services (and peers) that a changed edge touches; added edges are green,
removed ones red and dashed, unchanged edges between those nodes grey for context.
"""

from __future__ import annotations

import re
from typing import Any

_ADDED = "stroke:#1a7f37,stroke-width:2px"
_REMOVED = "stroke:#cf222e,stroke-width:2px,stroke-dasharray:4"
_CONTEXT = "stroke:#8c959f"


def changed_graph(
    added: list[dict[str, str]],
    removed: list[dict[str, str]],
    context: list[dict[str, str]],
    *,
    qualify: bool,
) -> str | None:
    """Edges are JSON-document access edges (source, sourceKind, server, operation);
    `qualify` keeps namespaces in service names (a mesh with several namespaces)."""
    if not added and not removed:
        return None
    touched = {_node(e["source"], e["sourceKind"]) for e in added + removed} | {
        _node(e["server"], "service") for e in added + removed
    }
    kept = [
        e
        for e in context
        if _node(e["source"], e["sourceKind"]) in touched
        and _node(e["server"], "service") in touched
    ]
    nodes: dict[str, str] = {}
    lines = ["flowchart LR"]
    styles: list[str] = []
    for index, (edge, style, arrow, sign) in enumerate(
        [(e, _ADDED, "-->", "+ ") for e in added]
        + [(e, _REMOVED, "-.->", "- ") for e in removed]
        + [(e, _CONTEXT, "-->", "") for e in kept]
    ):
        source = _id(_node(edge["source"], edge["sourceKind"]), nodes)
        server = _id(_node(edge["server"], "service"), nodes)
        label = _quote(sign + _label(edge))
        lines.append(f"  {source} {arrow}|{label}| {server}")
        styles.append(f"  linkStyle {index} {style}")
    declared = [
        f"  {ident}[{_quote(name if qualify or ':' in name else name.split('/', 1)[-1])}]"
        for name, ident in sorted(nodes.items(), key=lambda item: item[1])
    ]
    return "\n".join([lines[0], *declared, *lines[1:], *styles]) + "\n"


def _node(value: str, kind: str) -> str:
    if kind == "any":
        return "* any mesh identity"
    if kind == "ingress":
        return "ingress-gateway"
    if kind in ("namespace", "identity"):
        return f"{kind}:{value}"
    return value


def _label(edge: dict[str, Any]) -> str:
    text = str(edge["operation"])
    if edge.get("action") == "deny":
        text = "DENY " + text
    if edge.get("mode") not in (None, "enforce"):
        text += f" ({edge['mode']})"
    return text


def _id(name: str, nodes: dict[str, str]) -> str:
    if name not in nodes:
        nodes[name] = f"n{len(nodes)}"
    return nodes[name]


def _quote(text: str) -> str:
    """Mermaid strings are double-quoted; quotes and markup characters become entity codes."""
    escaped = (
        text.replace("#", "#35;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
    )
    return '"' + re.sub(r"[\r\n]+", " ", escaped) + '"'
