"""MC304 looks covering rules up in an index (`_CoverIndex`) instead of comparing every pair
of rules; these tests hold it to the pairwise comparison it replaced, on random policies
mixing exact, prefix, suffix and missing paths with service, namespace, identity and `*`
sources (two policies for one service, in both modes)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.kinds.access_policy.checks import placed_rules, rule_covers
from compiler.model.mesh import MeshModel, ServiceKey
from tests.helpers import compile_files, findings
from tests.rules.test_access_rules import SERVICES

PATHS = ("/a", "/a/b", "/a*", "/a/*", "/b*", "*b", "*/b", "*", "/ab", "/b")
SOURCES = (
    "{service: productpage}",
    "{service: ratings}",
    "{namespace: bookinfo}",
    "{namespace: other}",
    "{identity: bookinfo/bookinfo-productpage}",
    "{identity: '*'}",
    "{service: '*'}",
)

rule_strategy = st.tuples(
    st.lists(st.sampled_from(SOURCES), min_size=1, max_size=2),
    st.lists(st.sampled_from(PATHS), max_size=2),
    st.lists(st.sampled_from(("GET", "POST")), max_size=2, unique=True),
    st.booleans(),
)


def _rule_text(sources: list[str], paths: list[str], methods: list[str], log: bool) -> str:
    to = []
    if methods:
        to.append(f"methods: [{', '.join(methods)}]")
    if paths:
        to.append("paths: [" + ", ".join(f"'{p}'" for p in paths) + "]")
    text = f"  - from: [{', '.join(sources)}]\n    justification: test\n"
    if to:
        text += f"    to: {{{', '.join(to)}}}\n"
    return text + ("    log: true\n" if log else "")


def _policy(name: str, mode: str, rules: list[tuple[list[str], list[str], list[str], bool]]) -> str:
    head = (
        "apiVersion: meshc/v1\nkind: AccessPolicy\n"
        f"metadata: {{name: {name}, namespace: bookinfo}}\n"
        f"spec:\n  service: reviews\n  mode: {mode}\n  rules:\n"
    )
    return head + "".join(_rule_text(*r) for r in rules)


def _pairwise_redundant(model: MeshModel) -> list[tuple[str, int, str, int]]:
    """The comparison MC304 made before the index: every allow rule against every other,
    the first covering one wins, of identical rules the later is reported."""
    view = model.services[ServiceKey("bookinfo", "reviews")]
    allows = [p for p in placed_rules(view) if p.rule.action == "allow"]
    found = []
    for position, inner in enumerate(allows):
        for other, outer in enumerate(allows):
            if other == position or inner.policy.model.spec.mode != outer.policy.model.spec.mode:
                continue
            if inner.rule.log and not outer.rule.log:
                continue
            if not rule_covers(outer, inner, view, model):
                continue
            if other > position and rule_covers(inner, outer, view, model):
                continue
            found.append(
                (
                    inner.policy.model.metadata.name,
                    inner.index,
                    outer.policy.model.metadata.name,
                    outer.index,
                )
            )
            break
    return found


@settings(max_examples=150, deadline=None)
@given(
    first=st.lists(rule_strategy, min_size=1, max_size=8),
    second=st.lists(rule_strategy, min_size=1, max_size=4),
    second_mode=st.sampled_from(("enforce", "shadow")),
)
def test_mc304_index_finds_what_the_pairwise_comparison_finds(
    first: list[tuple[list[str], list[str], list[str], bool]],
    second: list[tuple[list[str], list[str], list[str], bool]],
    second_mode: str,
) -> None:
    compilation = compile_files(
        {
            "services.yaml": SERVICES,
            "a.yaml": _policy("reviews-a", "enforce", first),
            "b.yaml": _policy("reviews-b", second_mode, second),
        }
    )
    expected = _pairwise_redundant(compilation.model)
    got = findings(compilation, "MC304")
    assert len(got) == len(expected), [d.message for d in got]
    for diag, (name, inner, outer_name, outer) in zip(
        got, sorted(expected, key=_order), strict=True
    ):
        assert f"allow rule {inner + 1} for bookinfo/reviews is redundant" in diag.message
        assert f"rule {outer + 1} of AccessPolicy '{outer_name}'" in diag.message
        assert diag.span.file == ("a.yaml" if name == "reviews-a" else "b.yaml")


def _order(item: tuple[str, int, str, int]) -> tuple[str, int]:
    return ("a.yaml" if item[0] == "reviews-a" else "b.yaml", item[1])


def test_mc304_on_a_policy_of_many_disjoint_rules_reports_only_the_duplicate() -> None:
    rules = [([SOURCES[0]], [f"/api/r{index:04d}/*"], ["GET"], False) for index in range(400)]
    rules.append(([SOURCES[0]], ["/api/r0123/item"], ["GET"], False))
    files = {"services.yaml": SERVICES, "a.yaml": _policy("a", "enforce", rules)}
    compilation = compile_files(files)
    (diag,) = findings(compilation, "MC304")
    assert "allow rule 401 for bookinfo/reviews is redundant" in diag.message
    assert "rule 124 of AccessPolicy 'a'" in diag.message
