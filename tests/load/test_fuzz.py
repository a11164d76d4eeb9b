"""Property tests: no byte string and no document shape makes the loader or validator raise.

Examples are capped so the module runs in a few seconds; the corpus in test_bad_input.py
holds the cases worth keeping.
"""

from __future__ import annotations

import json
from typing import Any
from unittest.mock import patch

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.api import build_file
from compiler.kinds import KINDS
from compiler.load import yamlnodes
from compiler.load.documents import Document
from compiler.load.yamlnodes import Positions
from compiler.validate import validate_document

FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_TOKENS = [
    "apiVersion: meshc/v1\n",
    "kind: Service\n",
    "kind: Resilience\n",
    "kind: AccessPolicy\n",
    "metadata: {name: a}\n",
    "spec:",
    "ports:",
    "name:",
    "service:",
    "loadBalancer:",
    "rules:",
    "from:",
    " 9080",
    " .nan",
    " -.inf",
    " 1e999",
    " ~",
    " true",
    " http",
    "\n",
    "\r\n",
    "  ",
    "\t",
    "- ",
    ": ",
    "? ",
    ",",
    "{",
    "}",
    "[",
    "]",
    "&a ",
    "*a",
    "*b",
    "!!str ",
    "!!python/object:os.system ",
    "!foo ",
    "<<: ",
    "'",
    '"',
    "\\x",
    "# meshc: ignore[MC101]\n",
    "---\n",
    "...\n",
    "%YAML 1.1\n",
    "|\n",
    ">-\n",
    "\u00e9",
    "\ufeff",
    "\x00",
    "\x07",
]


def _assert_located(file: str, raw: bytes) -> None:
    result = build_file(file, raw)
    for problem in result.problems:
        assert problem.span.file == file
        assert problem.span.line >= 1 and problem.span.col >= 1
        assert problem.message
        assert problem.code != "MC000", problem


@FAST
@given(st.binary(max_size=512))
def test_random_bytes_never_raise(raw: bytes) -> None:
    _assert_located("fuzz.yaml", raw)


@FAST
@given(st.lists(st.sampled_from(_TOKENS), max_size=40))
def test_yaml_ish_text_never_raises(tokens: list[str]) -> None:
    _assert_located("fuzz.yaml", "".join(tokens).encode("utf-8", "surrogatepass"))


@FAST
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
def test_random_text_never_raises(text: str) -> None:
    _assert_located("fuzz.yaml", text.encode())


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["ratings", "http", "least-request", "2s", "*", "v1", "GET", "/a*"]),
)
_KEYS = st.sampled_from(
    [
        "service",
        "ports",
        "name",
        "port",
        "rules",
        "from",
        "to",
        "loadBalancer",
        "consistentHash",
        "retries",
        "attempts",
        "versions",
        "labels",
        "split",
        "steps",
        "match",
        "timeout",
        "x",
    ]
)
_VALUES: st.SearchStrategy[Any] = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_KEYS, inner, max_size=5)),
    max_leaves=25,
)


@FAST
@given(kind=st.sampled_from(sorted(KINDS)), spec=_VALUES, metadata=_VALUES)
def test_any_document_shape_validates_to_findings(kind: str, spec: Any, metadata: Any) -> None:
    data = {"apiVersion": "meshc/v1", "kind": kind, "metadata": metadata, "spec": spec}
    doc = Document("fuzz.yaml", 0, kind, data, Positions("fuzz.yaml"))
    intent, problems = validate_document(doc, KINDS[kind])
    assert (intent is None) == bool(problems)
    for problem in problems:
        assert problem.code in {"MC103", "MC105", "MC106"}, problem
        assert problem.message and problem.hint


_API_VERSIONS = st.one_of(
    _VALUES, st.sampled_from(["meshc/v1", "meshc/v2", "meshc", "mehsc/v1", "v1", "apps/v1"])
)
_KINDS = st.one_of(_VALUES, st.sampled_from([*sorted(KINDS), "AccesPolicy", "Deployment"]))


@FAST
@given(api_version=_API_VERSIONS, kind=_KINDS, metadata=_VALUES, spec=_VALUES)
def test_any_top_level_shape_is_classified_without_raising(
    api_version: Any, kind: Any, metadata: Any, spec: Any
) -> None:
    # JSON is YAML, so this goes through the real parser, classifier and validator.
    document = {"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": spec}
    _assert_located("fuzz.yaml", json.dumps(document).encode())


@FAST
@given(st.lists(st.sampled_from(_TOKENS), max_size=40))
def test_the_nesting_pre_check_never_raises(tokens: list[str]) -> None:
    # Big files are checked on parser events before composing; force that path here.
    with patch.object(yamlnodes, "FAST_PATH_STARTS", -1):
        _assert_located("fuzz.yaml", "".join(tokens).encode("utf-8", "surrogatepass"))
