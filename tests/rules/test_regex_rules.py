"""MC512 (regex-rejected-by-istio): regexes of Rollout matches that RE2, Istio's webhook or
Envoy refuse are reported at the regex value, with the construct named and its RE2
alternative; RE2 regexes stay silent."""

from __future__ import annotations

import pytest

from compiler.api import Compilation
from compiler.kinds.rollout.regex import regex_problem, unsupported_construct
from tests.helpers import compile_files, findings
from tests.rules import document, locate, only, where

SERVICE = """\
apiVersion: meshc/v1
kind: Service
metadata: {name: reviews, namespace: shop}
spec:
  ports: [{name: http, port: 9080, protocol: http}]
  versions: {v1: {labels: {version: v1}}, v2: {labels: {version: v2}}}
"""


def ab_rollout(match: str) -> str:
    """A Rollout of shop/reviews whose only match rule is `match` (a flow mapping body)."""
    spec = f"service: reviews\nstable: v1\nmatch:\n- {{{match}, version: v2}}\n"
    return document("Rollout", spec, name="reviews")


def lint(text: str) -> Compilation:
    return compile_files({"svc.yaml": SERVICE, "rollout.yaml": text})


def test_mc512_lookahead_in_header_regex() -> None:
    text = ab_rollout("headers: {user-agent: {regex: '^(?!.*bot).*Chrome'}}")
    diag = only(lint(text), "MC512")
    assert where(diag) == ("rollout.yaml", *locate(text, "'^(?!"))
    assert "match[0] header 'user-agent' regex '^(?!.*bot).*Chrome'" in diag.message
    assert "negative lookahead '(?!' at position 1; RE2 has no negative lookaheads" in (
        diag.message
    )
    assert "Istio or Envoy refuses" in diag.message
    assert "list what may follow instead" in diag.hint


def test_mc512_backreference_in_cookie_regex() -> None:
    text = ab_rollout(r"cookies: {cohort: {regex: '(a|b)-\1'}}")
    diag = only(lint(text), "MC512")
    assert where(diag) == ("rollout.yaml", *locate(text, "'(a|b)"))
    assert "cookie 'cohort'" in diag.message
    assert "backreference \\1 at position 6; RE2 has no backreferences" in diag.message
    assert "spell out the alternatives" in diag.hint


def test_mc512_syntax_error_names_python_message_and_position() -> None:
    text = ab_rollout("headers: {end-user: {regex: 'jason|[ma'}}")
    diag = only(lint(text), "MC512")
    assert where(diag) == ("rollout.yaml", *locate(text, "'jason|"))
    assert "unterminated character set at position 6" in diag.message
    assert "RE2 syntax" in diag.hint


def test_mc512_regex_longer_than_istio_allows() -> None:
    text = ab_rollout("headers: {end-user: {regex: '" + "a" * 1025 + "'}}")
    diag = only(lint(text), "MC512")
    assert "1025 characters long; Istio refuses regexes longer than 1024" in diag.message


def test_mc512_lowered_cookie_regex_too_long() -> None:
    # each value is a fine regex, but the lowering writes one alternative per order of
    # the three cookies (6), each holding all three values: far past 1024 characters
    value = "(?:" + "|".join(f"cohort-{n:03d}" for n in range(12)) + ")"
    cookies = ", ".join(f"c{n}: {{regex: '{value}'}}" for n in range(3))
    text = ab_rollout(f"cookies: {{{cookies}}}")
    diag = only(lint(text), "MC512")
    assert where(diag) == ("rollout.yaml", *locate(text, "cookies:"))
    assert "the cookie-header regex they lower to is refused" in diag.message
    assert "Istio refuses regexes longer than 1024" in diag.message
    assert "fewer cookies" in diag.hint


def test_mc512_silent_for_re2_regexes() -> None:
    text = ab_rollout(
        r"headers: {end-user: {regex: '(?i)jason|maria'}, x-n: {regex: '\pL+[(?=\]]\d{2,5}?'}}"
        r", cookies: {cohort: {regex: 'beta-(a|b)\10'}}"
    )
    assert findings(lint(text), "MC512") == []


@pytest.mark.parametrize(
    ("pattern", "offset", "named"),
    [
        ("a++", 1, "possessive quantifier '++'"),
        ("x{2}+", 3, "possessive quantifier '}+'"),
        ("(?>ab)c", 0, "atomic group"),
        ("foo(?<=o)", 3, "lookbehind"),
        ("(?P<n>a)(?P=n)", 8, "named backreference"),
        ("(?x) a b", 0, "inline flag 'x'"),
        ("abc\\Z", 3, "\\Z"),
        ("a(?#note)", 1, "comment group"),
    ],
)
def test_scanner_names_unsupported_constructs(pattern: str, offset: int, named: str) -> None:
    problem = regex_problem(pattern)
    assert problem is not None and problem.offset == offset, problem
    assert named in problem.reason


@pytest.mark.parametrize("pattern", [r"[(?=]x", r"[]\\1]", r"\\1", r"a+?b", r"[^]a]+", r"\(?=x"])
def test_scanner_respects_escapes_and_classes(pattern: str) -> None:
    assert unsupported_construct(pattern) is None


def test_program_size_beyond_envoy_limit() -> None:
    problem = regex_problem(r"\pL{30}")  # compiles, but to a program of ~36000
    assert problem is not None and problem.offset is None
    assert "Envoy refuses regexes larger than 32768" in problem.reason
    assert "counted repetitions" in problem.hint


def test_program_past_re2_memory_budget() -> None:
    problem = regex_problem(r"(\pL{200}){4}")
    assert problem is not None
    assert "pattern too large" in problem.reason and "counted repetitions" in problem.hint
