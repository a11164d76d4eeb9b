"""Render access graphs as a text table, Graphviz dot or Mermaid.

The renderers take plain `ViewEdge`s, not model objects, so that `meshc graph` (the
whole allowed and effective graphs) and `meshc plan` (only the edges a change adds or
removes, styled `added`/`removed`) draw with the same code. Output is deterministic:
edges are de-duplicated and sorted, and node ids are assigned in sorted order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from compiler.model.graph import CallDecision, Edge, allowed_edges, effective_edges
from compiler.model.mesh import MeshModel

EdgeStyle = Literal[
    "allow", "deny", "shadow", "default", "call", "denied", "unused", "added", "removed"
]
"""How an edge is drawn:

- `allow` / `deny`: an allow or deny rule of a server (the allowed graph);
- `shadow` / `default`: allow-all because the server's policy is in shadow mode, or
  because the mesh default is allow;
- `call`: a declared call the server allows (the effective graph);
- `denied`: a declared call the server denies (drawn dashed red with the reason);
- `unused`: an allow from a service that does not declare the call;
- `added` / `removed`: for plans, an edge a change introduces or takes away.
"""

VERDICT_LABEL = {
    "default-deny": "default deny",
    "no-rule": "no allow rule",
    "denied": "deny rule",
}
"""CallDecision.verdict -> the short reason shown in `DENIED (...)`."""


@dataclass(frozen=True, order=True, slots=True)
class ViewEdge:
    """One drawn edge: `source` and `target` are node names (`ns/name`, `ingress-gateway`)."""

    source: str
    target: str
    label: str
    style: EdgeStyle
    note: str = ""
    """Shown in tables only: where the edge comes from, or why a call is denied."""


# --- building views from the model ----------------------------------------------------------


def allowed_view(model: MeshModel) -> list[ViewEdge]:
    """The allowed graph: every allow and deny a server states, and what defaults open."""
    return [_from_rule_edge(edge) for edge in allowed_edges(model)]


def effective_view(model: MeshModel) -> list[ViewEdge]:
    """Every declared call: allowed ones (`call`) and denied ones (`denied`, with the reason)."""
    return [_from_decision(decision) for decision in effective_edges(model)]


def combined_view(model: MeshModel) -> list[ViewEdge]:
    """Both graphs in one picture.

    Declared calls are drawn as in the effective view. Allows that no declared call uses
    are added: from services as `unused`, from the ingress gateway, namespaces and
    identities as they are (those callers declare nothing). Deny rules stay visible.
    """
    decisions = effective_edges(model)
    called = {(str(d.client), str(d.server)) for d in decisions}
    edges = [_from_decision(d) for d in decisions]
    for edge in allowed_edges(model):
        drawn = _from_rule_edge(edge)
        if edge.action == "allow" and edge.source.kind == "service":
            if (edge.source.value, str(edge.server)) in called:
                continue
            drawn = ViewEdge(drawn.source, drawn.target, drawn.label, "unused", drawn.note)
        edges.append(drawn)
    return edges


def _from_rule_edge(edge: Edge) -> ViewEdge:
    style: EdgeStyle
    if edge.action == "deny":
        style = "deny"
    elif edge.mode == "shadow":
        style = "shadow"
    elif edge.mode == "default":
        style = "default"
    else:
        style = "allow"
    return ViewEdge(str(edge.source), str(edge.server), edge.operation, style, edge.origin)


def _from_decision(decision: CallDecision) -> ViewEdge:
    client, server = str(decision.client), str(decision.server)
    if decision.allowed:
        return ViewEdge(client, server, "; ".join(decision.operations) or "*", "call")
    label = f"DENIED ({VERDICT_LABEL.get(decision.verdict, decision.verdict)})"
    return ViewEdge(client, server, label, "denied", decision.reason)


def _ordered(edges: Iterable[ViewEdge]) -> list[ViewEdge]:
    return sorted(set(edges))


_DRAWN_SUFFIX: dict[EdgeStyle, str] = {
    "shadow": " (shadow)",
    "default": " (mesh default)",
    "unused": " (not called)",
    "deny": " (deny)",
}


def annotated(edges: Iterable[ViewEdge]) -> list[ViewEdge]:
    """For pictures, which have no tag column: say in the label what a line style means.

    The renderers draw labels verbatim (callers such as the plan write their own), so
    `meshc graph` applies this before drawing dot or mermaid.
    """
    return [
        ViewEdge(e.source, e.target, e.label + _DRAWN_SUFFIX.get(e.style, ""), e.style, e.note)
        for e in edges
    ]


def _is_service(node: str) -> bool:
    """`ns/name` is a declared service; everything else is an outside caller or a pattern."""
    return "/" in node and ":" not in node and not node.startswith("*")


# --- table ------------------------------------------------------------------------------------

_TABLE_ARROW: dict[EdgeStyle, str] = {
    "allow": "→",
    "deny": "⊣",
    "shadow": "→",
    "default": "→",
    "call": "→",
    "denied": "⇢",
    "unused": "→",
    "added": "→",
    "removed": "→",
}
_TABLE_TAG: dict[EdgeStyle, str] = {
    "allow": "",
    "deny": "[deny]",
    "shadow": "[shadow: allow-all while the policy is in shadow mode]",
    "default": "[mesh default: allow]",
    "call": "",
    "denied": "",
    "unused": "[no client declares this call]",
    "added": "[added]",
    "removed": "[removed]",
}


def table(sections: Sequence[tuple[str, Sequence[ViewEdge]]]) -> str:
    """Plain text: a heading per section, one aligned line per edge.

    `source → target  LABEL  [tag] (origin)`; a denied call reads
    `client ⇢ server  DENIED (kind): reason`.
    """
    blocks = []
    for heading, section in sections:
        rows = [(e, _table_label(e)) for e in _ordered(section)]
        lines = [heading]
        if not rows:
            lines.append("  (none)")
        width_source = max((len(e.source) for e, _ in rows), default=0)
        width_target = max((len(e.target) for e, _ in rows), default=0)
        width_label = max((len(label) for _, label in rows), default=0)
        for edge, label in rows:
            extras = [_TABLE_TAG[edge.style]]
            if edge.note and edge.style != "denied":
                extras.append(f"({edge.note})")
            line = (
                f"  {edge.source.ljust(width_source)} {_TABLE_ARROW[edge.style]} "
                f"{edge.target.ljust(width_target)}  {label.ljust(width_label)}  "
                + " ".join(x for x in extras if x)
            )
            lines.append(line.rstrip())
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def _table_label(edge: ViewEdge) -> str:
    return f"{edge.label}: {edge.note}" if edge.style == "denied" and edge.note else edge.label


# --- Graphviz dot -----------------------------------------------------------------------------

_DOT_ATTRS: dict[EdgeStyle, str] = {
    "allow": "",
    "deny": 'color="#c62828", fontcolor="#c62828", arrowhead=tee',
    "shadow": 'style=dotted, color="#757575"',
    "default": 'style=dotted, color="#757575"',
    "call": 'penwidth=2, color="#1565c0"',
    "denied": 'style=dashed, color="#d32f2f", fontcolor="#d32f2f"',
    "unused": 'style=dotted, color="#9e9e9e", fontcolor="#757575"',
    "added": 'penwidth=2, color="#2e7d32", fontcolor="#2e7d32"',
    "removed": 'style=dashed, color="#c62828", fontcolor="#c62828"',
}


def dot_quote(text: str) -> str:
    """A dot double-quoted string: backslashes and quotes escaped, newlines as `\\n`."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return f'"{escaped}"'


def dot(edges: Iterable[ViewEdge], *, name: str = "meshc") -> str:
    """A Graphviz digraph (`dot -Tsvg`); denied calls dashed red, deny rules with a tee."""
    ordered = _ordered(edges)
    nodes = sorted({n for e in ordered for n in (e.source, e.target)})
    lines = [
        f"digraph {dot_quote(name)} {{",
        "  rankdir=LR;",
        '  node [shape=box, style=rounded, fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    for node in nodes:
        shape = "" if _is_service(node) else " [shape=ellipse, style=dashed]"
        lines.append(f"  {dot_quote(node)}{shape};")
    for edge in ordered:
        attrs = f"label={dot_quote(edge.label)}"
        if _DOT_ATTRS[edge.style]:
            attrs += ", " + _DOT_ATTRS[edge.style]
        lines.append(f"  {dot_quote(edge.source)} -> {dot_quote(edge.target)} [{attrs}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


# --- Mermaid ----------------------------------------------------------------------------------

_MERMAID_ARROW: dict[EdgeStyle, str] = {
    "allow": "-->",
    "deny": "--x",
    "shadow": "-.->",
    "default": "-.->",
    "call": "==>",
    "denied": "-.->",
    "unused": "-.->",
    "added": "==>",
    "removed": "-.->",
}
_MERMAID_LINK_STYLE: dict[EdgeStyle, str] = {
    "allow": "",
    "deny": "stroke:#c62828,color:#c62828",
    "shadow": "stroke:#757575",
    "default": "stroke:#757575",
    "call": "stroke:#1565c0",
    "denied": "stroke:#d32f2f,color:#d32f2f,stroke-dasharray:6 4",
    "unused": "stroke:#9e9e9e,color:#757575",
    "added": "stroke:#2e7d32,color:#2e7d32",
    "removed": "stroke:#c62828,color:#c62828,stroke-dasharray:6 4",
}
_MERMAID_ENTITIES = (
    ("#", "#35;"),  # first: the entity syntax itself starts with '#'
    ('"', "#quot;"),
    ("&", "#amp;"),
    ("<", "#lt;"),
    (">", "#gt;"),
    ("|", "#124;"),
    ("`", "#96;"),
)


def mermaid_text(text: str) -> str:
    """A Mermaid quoted label: entity codes for characters Mermaid or HTML would interpret."""
    text = " ".join(text.splitlines())
    for char, entity in _MERMAID_ENTITIES:
        text = text.replace(char, entity)
    return f'"{text}"'


def mermaid(edges: Iterable[ViewEdge], *, direction: Literal["LR", "TB"] = "LR") -> str:
    """A Mermaid flowchart (wrap it in a ```mermaid fence for GitHub markdown).

    Node ids are `n0`, `n1`, ... in sorted order of the node names, so ids never collide
    with Mermaid keywords and the output is stable; names appear only as quoted labels.
    """
    ordered = _ordered(edges)
    nodes = sorted({n for e in ordered for n in (e.source, e.target)})
    ids = {node: f"n{i}" for i, node in enumerate(nodes)}
    lines = [f"flowchart {direction}"]
    if not ordered:
        lines.append("  %% no edges")
    for node in nodes:
        if _is_service(node):
            lines.append(f"  {ids[node]}[{mermaid_text(node)}]")
        else:
            lines.append(f"  {ids[node]}([{mermaid_text(node)}])")
    for edge in ordered:
        arrow = _MERMAID_ARROW[edge.style]
        label = mermaid_text(edge.label)
        lines.append(f"  {ids[edge.source]} {arrow}|{label}| {ids[edge.target]}")
    for index, edge in enumerate(ordered):
        style = _MERMAID_LINK_STYLE[edge.style]
        if style:
            lines.append(f"  linkStyle {index} {style}")
    return "\n".join(lines) + "\n"
