"""The fast emitter (`compiler.yamlout`) writes exactly the bytes the previous one did
(`tests/lower/yaml_reference.py`): rendered trees already on disk, golden files and a
re-render that rewrites only changed files all depend on it."""

from __future__ import annotations

from enum import Enum, IntEnum
from pathlib import Path

import yaml  # type: ignore[import-untyped]
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler import yamlout
from compiler.api import compile_tree, load_tree
from compiler.artifacts import to_yaml, to_yaml_stream
from compiler.lower import lower
from tests.bench.generate import Shape, generate_mesh
from tests.helpers import NOW
from tests.lower import yaml_reference
from tests.lower.support import RICH, render_dir

TRICKY = [
    "",
    " ",
    " lead",
    "trail ",
    "  both  ",
    "yes",
    "Yes",
    "YES",
    "no",
    "on",
    "Off",
    "y",
    "N",
    "true",
    "False",
    "null",
    "Null",
    "~",
    "=",
    "<<",
    "0123",
    "0755",
    "0o17",
    "0x1F",
    "0b101",
    "1_000",
    "1e3",
    "1E-3",
    "-1.5",
    "+.5",
    ".5",
    "5.",
    ".inf",
    "-.Inf",
    ".NaN",
    "1:30",
    "190:20:30.15",
    "2026-01-01",
    "2026-1-1T10:00:00Z",
    "2026-01-01 10:00",
    "a:b",
    "a: b",
    "a:",
    ":a",
    "#c",
    "a#b",
    "a #b",
    "a # b",
    "- x",
    "-x",
    "-",
    "--",
    "---",
    "...",
    "?",
    "? x",
    "*",
    "*.svc",
    "/cat*",
    "&a",
    "!t",
    "%x",
    "@x",
    "`x",
    "|",
    ">",
    "[x]",
    "{x}",
    "a,b",
    "5xx,reset",
    "'q'",
    '"d"',
    "it's",
    'say "hi"',
    "back\\slash",
    "line\nbreak",
    "line\r\nbreak",
    "tab\there",
    "\ttab",
    "nul\x00",
    "bell\x07",
    "del\x7f",
    "nel\x85",
    "nbsp\xa0",
    "ls\u2028ps\u2029",
    "\ufeffbom",
    "\ufffe",
    "é",
    "naïve café",
    "日本語",
    "emoji 🚀",
    "\U0001f600",
    "spiffe://cluster.local/ns/a/sa/b",
    "reviews.bookinfo.svc.cluster.local",
    "meshc.io/source",
    "a.yaml#Service/bookinfo/reviews",
    "odd\\xff.yaml#Service/bookinfo/oddity",
]

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(),
    st.text(max_size=20),
    st.text(alphabet=st.sampled_from("ab0189.:-# '\"\\\n\t~yYnN_eE+x"), max_size=8),
    st.sampled_from(TRICKY),
)
_DATA = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8) | st.sampled_from(TRICKY), inner, max_size=4)
    ),
    max_leaves=30,
)


def same(data: object) -> None:
    assert yamlout.to_yaml(data) == yaml_reference.to_yaml(data), data


@settings(max_examples=600, deadline=None)
@given(data=_DATA)
def test_the_fast_emitter_writes_the_reference_bytes_for_any_json_shaped_data(
    data: object,
) -> None:
    same(data)
    same({"v": data})
    same([data])


def test_tricky_strings_are_quoted_exactly_as_before_as_values_keys_and_items() -> None:
    for text in TRICKY:
        same(text)
        same({"k": text})
        same({text: "v"})
        same({"k": [text, {text: [text]}]})
    same({text: [text, [text]] for text in TRICKY})
    for text in ("yes", "0123", "a: b", "", "trail "):
        assert yamlout.to_yaml({"k": text}) != f"k: {text}\n", "still quoted"


def test_nesting_shapes_match_the_reference() -> None:
    shapes: list[object] = [
        {},
        [],
        {"a": {}},
        {"a": []},
        [{}],
        [[]],
        [[[1, 2], []], {"a": [{"b": [[{}]]}]}],
        {"a": [{"x": 1, "y": [1, {"z": {}}]}, [{"q": []}], "s"]},
        {"b": 1, "a": {"d": [None, True, False, 1.0, 1e20, -0.0, 2**70]}},
        None,
        7,
        1.5e-300,
        float("inf"),
        float("nan"),
    ]
    for shape in shapes:
        same(shape)


class Mode(str, Enum):  # noqa: UP042
    """A mixin whose `str()` differs from its value (unlike StrEnum): the case under test."""

    STRICT = "STRICT"


class Level(IntEnum):
    HIGH = 3


def test_str_and_int_subclasses_render_through_str_and_do_not_share_a_cached_entry() -> None:
    """A `(str, Enum)` member equals its value but `str()` of it differs: the memo must
    never hand one the other's text."""
    same({"mode": Mode.STRICT, "level": Level.HIGH, Mode.STRICT: "key"})
    yamlout.string.cache_clear()
    assert yamlout.to_yaml({"a": "STRICT"}) == "a: STRICT\n"
    assert yamlout.to_yaml({"a": Mode.STRICT}) == yaml_reference.to_yaml({"a": Mode.STRICT})
    assert yamlout.to_yaml({"a": "STRICT"}) == "a: STRICT\n"


def test_every_rendered_object_of_the_fixtures_and_a_generated_mesh_matches(
    tmp_path: Path,
) -> None:
    objects = [obj for _, obj in render_dir(RICH)]
    generate_mesh(tmp_path / "mesh", services=40, shape=Shape(hub=True))
    compilation = compile_tree(load_tree(tmp_path / "mesh"), now=NOW)
    objects += [obj for _, obj in lower(compilation, target="istio")]
    assert len(objects) > 150
    for obj in objects:
        assert to_yaml(obj) == yaml_reference.to_yaml(obj), obj["metadata"]
    stream = to_yaml_stream(objects)
    assert stream == "".join("---\n" + yaml_reference.to_yaml(obj) for obj in objects)
    assert list(yaml.safe_load_all(stream)) == objects
