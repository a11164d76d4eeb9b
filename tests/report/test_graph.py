"""`meshc graph` and the renderers in compiler.graphview."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner, Result

from compiler.cli import cli
from compiler.graphview import (
    ViewEdge,
    allowed_view,
    annotated,
    combined_view,
    dot,
    dot_quote,
    effective_view,
    mermaid,
    mermaid_text,
    table,
)
from tests.helpers import REPO, compile_files, run_cli, write_tree

NOW = "2026-11-25T12:00:00Z"
MESH = "apiVersion: meshc/v1\nkind: Mesh\nmetadata: {name: m}\n"

# frontend calls api (allowed), db (no AccessPolicy: default deny) and cache (no rule for it);
# batch is allowed on api but declares no call (an unused allow).
DENIALS = {
    "frontend.yaml": """\
    apiVersion: meshc/v1
    kind: Service
    metadata: {name: frontend, namespace: shop}
    spec:
      ports: [{name: http, port: 80, protocol: http}]
      calls: [api, db, cache]
    """,
    "api.yaml": """\
    apiVersion: meshc/v1
    kind: Service
    metadata: {name: api, namespace: shop}
    spec:
      ports: [{name: http, port: 80, protocol: http}]
    ---
    apiVersion: meshc/v1
    kind: AccessPolicy
    metadata: {name: api, namespace: shop}
    spec:
      service: api
      rules:
      - from: [{service: frontend}, {service: batch}]
        to: {methods: [GET, POST], paths: ["/api/*"]}
    """,
    "batch.yaml": """\
    apiVersion: meshc/v1
    kind: Service
    metadata: {name: batch, namespace: shop}
    spec:
      ports: [{name: http, port: 80, protocol: http}]
    """,
    "db.yaml": """\
    apiVersion: meshc/v1
    kind: Service
    metadata: {name: db, namespace: shop}
    spec:
      ports: [{name: tcp, port: 5432, protocol: tcp}]
    """,
    "cache.yaml": """\
    apiVersion: meshc/v1
    kind: Service
    metadata: {name: cache, namespace: shop}
    spec:
      ports: [{name: tcp, port: 6379, protocol: tcp}]
    ---
    apiVersion: meshc/v1
    kind: AccessPolicy
    metadata: {name: cache, namespace: shop}
    spec:
      service: cache
      rules:
      - from: [{service: api}]
    """,
}


def _squash(text: str) -> list[str]:
    """Lines with runs of blanks collapsed (the table aligns columns with padding)."""
    return [" ".join(line.split()) for line in text.splitlines()]


def _invoke(*args: str) -> Result:
    """Run `meshc ...` in-process (fast); the subprocess path is covered separately."""
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _graph(*args: str) -> str:
    result = _invoke("graph", str(REPO / "policies"), "--now", NOW, *args)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_graph_subprocess_on_policies() -> None:
    result = run_cli("meshc", "graph", "policies", "--format", "mermaid", "--now", NOW, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout == _graph("--format", "mermaid")


# --- the example repository -------------------------------------------------------------------


def test_table_on_policies_shows_both_graphs() -> None:
    lines = _squash(_graph())
    allowed_at = lines.index("Allowed graph (what servers permit)")
    effective_at = lines.index("Effective graph (declared calls and what the servers decide)")
    allowed, effective = lines[allowed_at:effective_at], lines[effective_at:]
    assert (
        "bookinfo/productpage → bookinfo/reviews GET /reviews/* "
        "(reviews.yaml#AccessPolicy/bookinfo/reviews)" in allowed
    )
    assert any(
        line.startswith("ingress-gateway → bookinfo/productpage GET /productpage,/static/*,/login")
        for line in allowed
    )
    assert any(
        line.startswith("ingress-gateway → bookinfo/productpage POST /login") for line in allowed
    )
    assert "bookinfo/productpage → bookinfo/reviews GET /reviews/*" in effective
    assert "bookinfo/reviews → bookinfo/ratings GET /ratings/*" in effective
    assert not any("ingress-gateway" in line for line in effective)  # the gateway declares no calls
    assert not any("DENIED" in line for line in lines)


def test_graph_flags_select_one_graph() -> None:
    allowed = _graph("--allowed")
    effective = _graph("--effective")
    assert "Allowed graph" in allowed and "Effective graph" not in allowed
    assert "Effective graph" in effective and "Allowed graph" not in effective
    assert _graph("--both") == _graph()


def test_mermaid_on_policies() -> None:
    text = _graph("--format", "mermaid")
    assert text.startswith("flowchart LR\n")
    ids = dict(re.findall(r'^  (n\d+)\(?\["([^"]+)"\]\)?$', text, re.M))
    by_name = {name: node for node, name in ids.items()}
    assert set(by_name) == {
        "bookinfo/details",
        "bookinfo/productpage",
        "bookinfo/ratings",
        "bookinfo/reviews",
        "ingress-gateway",
    }
    pp, reviews, gateway = (
        by_name["bookinfo/productpage"],
        by_name["bookinfo/reviews"],
        by_name["ingress-gateway"],
    )
    assert f'  {pp} ==>|"GET /reviews/*"| {reviews}' in text.splitlines()
    assert f'  {gateway} -->|"POST /login"| {pp}' in text.splitlines()
    assert f'  {gateway}(["ingress-gateway"])' in text.splitlines()  # outside callers are stadiums


def test_dot_on_policies_is_deterministic() -> None:
    text = _graph("--format", "dot")
    assert text.startswith('digraph "meshc" {') and text.rstrip().endswith("}")
    assert (
        '"bookinfo/productpage" -> "bookinfo/reviews" [label="GET /reviews/*", penwidth=2' in text
    )
    assert '"ingress-gateway" -> "bookinfo/productpage" [label="POST /login"];' in text
    assert _graph("--format", "dot") == text


# --- denials -----------------------------------------------------------------------------------


def test_effective_view_shows_denials_with_their_reason() -> None:
    compilation = compile_files(DENIALS)
    edges = {(e.source, e.target): e for e in effective_view(compilation.model)}
    assert edges[("shop/frontend", "shop/api")] == ViewEdge(
        "shop/frontend", "shop/api", "GET,POST /api/*", "call"
    )
    db = edges[("shop/frontend", "shop/db")]
    assert (db.label, db.style) == ("DENIED (default deny)", "denied")
    assert db.note == "shop/db has no AccessPolicy and the mesh default is deny"
    cache = edges[("shop/frontend", "shop/cache")]
    assert (cache.label, cache.style) == ("DENIED (no allow rule)", "denied")
    assert "allows shop/frontend" in cache.note


def test_table_prints_denied_calls() -> None:
    compilation = compile_files(DENIALS)
    lines = _squash(table([("Effective", effective_view(compilation.model))]))
    assert (
        "shop/frontend ⇢ shop/db DENIED (default deny): "
        "shop/db has no AccessPolicy and the mesh default is deny"
    ) in lines


def test_combined_view_marks_unused_allows_and_skips_duplicates() -> None:
    compilation = compile_files(DENIALS)
    edges = combined_view(compilation.model)
    styles = {(e.source, e.target): e.style for e in edges}
    assert styles[("shop/batch", "shop/api")] == "unused"
    assert styles[("shop/frontend", "shop/api")] == "call"
    assert styles[("shop/frontend", "shop/db")] == "denied"
    assert styles[("shop/api", "shop/cache")] == "unused"
    # the allow frontend -> api is drawn once, as the call
    assert sum(1 for e in edges if (e.source, e.target) == ("shop/frontend", "shop/api")) == 1
    assert {(e.source, e.target) for e in allowed_view(compilation.model)} >= {
        ("shop/batch", "shop/api")
    }


def test_annotated_labels_name_the_line_style() -> None:
    compilation = compile_files(DENIALS)
    labels = {(e.source, e.target): e.label for e in annotated(combined_view(compilation.model))}
    assert labels[("shop/batch", "shop/api")] == "GET,POST /api/* (not called)"
    assert labels[("shop/frontend", "shop/api")] == "GET,POST /api/*"
    chart = mermaid(annotated([ViewEdge("ns/a", "ns/b", "GET /x", "deny")]))
    assert '  n0 --x|"GET /x (deny)"| n1' in chart.splitlines()
    assert mermaid([ViewEdge("ns/a", "ns/b", "GET /x", "deny")]).count("(deny)") == 0


def test_denied_calls_are_dashed_red_in_dot_and_mermaid() -> None:
    compilation = compile_files(DENIALS)
    edges = effective_view(compilation.model)
    text = dot(edges)
    assert (
        '"shop/frontend" -> "shop/db" [label="DENIED (default deny)", style=dashed, color="#d32f2f"'
        in text
    )
    chart = mermaid(edges)
    lines = chart.splitlines()
    links = [line for line in lines if "|" in line]
    denied_index = next(i for i, line in enumerate(links) if "DENIED (default deny)" in line)
    assert " -.->|" in links[denied_index]
    assert f"  linkStyle {denied_index} stroke:#d32f2f,color:#d32f2f,stroke-dasharray:6 4" in lines


def test_graph_cli_draws_denials_despite_their_lint_errors(tmp_path: Path) -> None:
    root = write_tree(tmp_path, {**DENIALS, "mesh.yaml": MESH})
    result = _invoke("graph", str(root), "--effective", "--now", NOW)
    assert result.exit_code == 0, result.stderr
    assert "shop/frontend ⇢ shop/db DENIED (default deny)" in "\n".join(_squash(result.stdout))
    assert re.search(r"note: \d+ lint error\(s\); details: meshc lint ", result.stderr)


def test_graph_refuses_a_tree_that_does_not_load(tmp_path: Path) -> None:
    bad = "apiVersion: meshc/v1\nkind: Service\nmetadata: {name: a}\nspec: {portz: []}\n"
    root = write_tree(tmp_path, {"mesh.yaml": MESH, "bad.yaml": bad})
    result = run_cli("meshc", "graph", str(root), "--now", NOW)
    assert result.returncode == 2
    assert "the policy tree does not compile" in result.stderr
    assert "bad.yaml:4:" in result.stderr and "error[MC1" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_graph_bad_path_is_a_usage_error(tmp_path: Path) -> None:
    result = _invoke("graph", str(tmp_path / "missing"))
    assert result.exit_code == 2
    assert "no such file or directory" in result.stderr


# --- escaping ----------------------------------------------------------------------------------


def test_mermaid_escapes_labels() -> None:
    assert mermaid_text('a "b" #1 <i>|x|`y` & z\nnext') == (
        '"a #quot;b#quot; #35;1 #lt;i#gt;#124;x#124;#96;y#96; #amp; z next"'
    )
    chart = mermaid([ViewEdge("end", "ns/x", 'say "hi"', "allow")])
    assert '  n0(["end"])' in chart.splitlines()  # node ids never collide with keywords
    assert '  n0 -->|"say #quot;hi#quot;"| n1' in chart.splitlines()


def test_dot_escapes_quotes_backslashes_and_newlines() -> None:
    assert dot_quote('a "b" \\N\nc') == '"a \\"b\\" \\\\N\\nc"'
    text = dot([ViewEdge('x"y', "ns/z", "l", "allow")])
    assert '"x\\"y" -> "ns/z" [label="l"];' in text


def test_renderers_are_order_independent_and_deduplicate() -> None:
    a = ViewEdge("ns/a", "ns/b", "GET /x", "call")
    b = ViewEdge("ns/b", "ns/c", "*", "denied", "because")
    assert mermaid([a, b, a]) == mermaid([b, a])
    assert dot([b, a]) == dot([a, b])
    assert table([("T", [b, a, a])]) == table([("T", [a, b])])
    assert table([("Empty", [])]) == "Empty\n  (none)\n"
