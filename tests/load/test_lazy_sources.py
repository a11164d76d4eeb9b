"""A file's result keeps its bytes, not its lines or position tables: both are derived
again on demand and must be exactly what the first parse saw."""

from __future__ import annotations

import gc

from compiler.load.yamlnodes import parse_source
from compiler.treefiles import build_file, source_lines

TEXT = """\
apiVersion: meshc/v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  ports: [{name: http, port: 8080, protocol: http}]
  versions: {v1: {labels: {version: v1}}}
  calls: [api]  # meshc: ignore[MC201] reason: declared elsewhere
---
apiVersion: meshc/v1
kind: AccessPolicy
metadata: {name: web, namespace: shop}
spec:
  service: web
  rules:
  - from: [{service: api}]
    to: {methods: [GET], paths: ["/a/*"]}
"""


def test_spans_are_those_of_the_first_parse() -> None:
    raw = TEXT.encode()
    result = build_file("shop/web.yaml", raw)
    eager = {doc.index: doc.positions for doc in parse_source("shop/web.yaml", raw).documents}
    assert [d.kind for d in result.documents] == ["Service", "AccessPolicy"]
    for doc in result.documents:
        assert doc.positions.values == {}, "no table is built before a span is asked for"
        expected = eager[doc.index]
        for path in [*expected.values, ("nowhere",), ("spec", "rules", 5)]:
            assert doc.span(*path) == expected.value(path)
        for path in expected.keys:
            assert doc.key_span(*path) == expected.key(path)
        assert doc.positions == expected and expected == doc.positions


def test_equal_bytes_give_equal_intents_and_moved_text_does_not() -> None:
    raw = TEXT.encode()
    first, again = build_file("f.yaml", raw), build_file("f.yaml", bytes(raw))
    assert first.intents == again.intents
    assert first.documents[0].positions.values == {}, "compared without building tables"
    moved = build_file("f.yaml", b"\n" + raw)
    assert moved.intents[0].model == first.intents[0].model
    assert moved.intents != first.intents
    assert moved.intents[0].span("calls").line == first.intents[0].span("calls").line + 1


def test_lines_and_suppressions_come_from_the_bytes() -> None:
    result = build_file("f.yaml", TEXT.encode())
    assert result.lines == TEXT.splitlines()
    [found] = result.suppressions()
    assert (found.line, found.codes) == (7, frozenset({"MC201"}))
    assert build_file("g.yaml", TEXT.replace("# meshc:", "#").encode()).suppressions() == []
    assert build_file("bad.yaml", b"\xff\xfe").lines == []


def test_a_report_splits_only_the_files_it_quotes() -> None:
    files = {name: build_file(name, TEXT.encode()) for name in ("a.yaml", "b.yaml")}
    lines = source_lines(files)
    assert list(lines) == ["a.yaml", "b.yaml"] and len(lines) == 2
    assert lines["a.yaml"] is lines["a.yaml"] and lines["a.yaml"][0] == "apiVersion: meshc/v1"
    assert lines.get("missing.yaml") is None


def test_parsing_leaves_no_cyclic_garbage() -> None:
    """A lint pauses the collector and freezes what it built: anything a parse leaves in
    a reference cycle (ruamel's per-call loader class once did) would never be freed."""
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        kept = [build_file(f"f{n}.yaml", TEXT.encode()) for n in range(20)]
        assert gc.collect() == 0
    finally:
        if enabled:
            gc.enable()
    assert len(kept) == 20


def test_equal_models_share_their_set_of_given_fields() -> None:
    first, again = build_file("a.yaml", TEXT.encode()), build_file("b.yaml", TEXT.encode())
    rule, same = (r.intents[1].model.spec.rules[0] for r in (first, again))
    assert rule.model_fields_set is same.model_fields_set
    changed = rule.model_copy(update={"action": "deny"})
    assert "action" in changed.model_fields_set and "action" not in rule.model_fields_set
