"""Output that other tools read the same way: YAML 1.1 readers (Kubernetes' sigs.k8s.io/yaml,
PyYAML) and any rollout state a reconciler may hold."""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import yaml  # type: ignore[import-untyped]
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.api import Compilation
from compiler.artifacts import to_yaml, to_yaml_stream
from compiler.lower import lower
from tests.lower.support import RICH, compile_dir, objects, render_dir


def test_a_yaml_1_1_reader_reads_the_rendered_stream_as_the_objects() -> None:
    artifacts = render_dir(RICH)
    text = to_yaml_stream(obj for _, obj in artifacts)
    assert list(yaml.safe_load_all(text)) == [obj for _, obj in artifacts]
    assert "- 'yes'" in text, "a header value `yes` stays a string for YAML 1.1 readers"
    assert "- '8080'" in text, "ports in AuthorizationPolicy are strings"


def test_strings_that_yaml_1_1_would_retype_are_quoted() -> None:
    values = [
        "yes",
        "No",
        "on",
        "OFF",
        "y",
        "~",
        "null",
        "0755",
        "1:30",
        "2026-01-01",
        "1e3",
        ".5",
        "0x1F",
        "true",
        "",
        "plain",
        "5xx,reset",
        "/cat*",
        "*",
    ]
    text = to_yaml({"v": values})
    assert yaml.safe_load(text) == {"v": values}


@cache
def rich() -> Compilation:
    return compile_dir(RICH)


@settings(max_examples=40, deadline=None)
@given(step=st.integers(min_value=0, max_value=10_000))
def test_any_rollout_step_gives_weights_summing_to_100(step: int) -> None:
    compilation = replace(rich(), rollout_state={"shop/catalog": step})
    vs = objects(lower(compilation), "VirtualService")["shop/catalog"]
    for route in vs["spec"]["http"]:
        weights = [d.get("weight", 100) for d in route["route"]]
        assert sum(weights) == 100 and all(0 < w <= 100 for w in weights)


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.sampled_from(
        ["yes", "on", "0755", "1:30", "- x", "a: b", "#c", "*", "&a", "!t", "'q'", '"d"', "x #y"]
    ),
)
_DATA = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(min_size=1, max_size=12), inner, max_size=4)
    ),
    max_leaves=25,
)


@settings(max_examples=150, deadline=None)
@given(data=_DATA)
def test_emitted_yaml_reads_back_identically_in_yaml_1_1_and_1_2(data: object) -> None:
    from ruamel.yaml import YAML

    text = to_yaml(data)
    assert yaml.safe_load(text) == data, text
    assert YAML(typ="safe", pure=True).load(text) == data, text


def _rich_documents() -> list[str]:
    docs: list[str] = []
    for path in sorted(RICH.glob("*.yaml")):
        docs.extend(d.strip() + "\n" for d in path.read_text().split("\n---\n") if d.strip())
    return docs


@settings(max_examples=15, deadline=None)
@given(order=st.permutations(range(len(_rich_documents()))))
def test_document_order_does_not_change_the_output(order: list[int]) -> None:
    """Same intents in any order (one file) → byte-identical render."""
    from tests.helpers import compile_files

    docs = _rich_documents()
    baseline = compile_files({"all.yaml": "---\n".join(docs)}, with_mesh=False)
    shuffled = compile_files({"all.yaml": "---\n".join(docs[i] for i in order)}, with_mesh=False)
    first = to_yaml_stream(obj for _, obj in lower(baseline))
    assert to_yaml_stream(obj for _, obj in lower(shuffled)) == first
