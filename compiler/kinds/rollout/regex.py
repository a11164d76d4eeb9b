"""Whether Istio and Envoy accept a regular expression (the analysis behind MC512).

A regex of a Rollout match is lowered to a VirtualService `StringMatch.regex`. Istio's
validating webhook compiles it with Go's `regexp` (RE2 syntax) and refuses one longer
than 1024 characters; Envoy compiles it with Google RE2 and NACKs a route whose regex
program is larger than `re2.max_program_size.error_level` (Istio's bootstrap sets 32768).
Neither check is in the CRD schema, so `meshc lint --crds` cannot see them.

RE2 itself (the `google-re2` binding) is the authority on what compiles. A small scanner
then names the Perl/Python construct RE2 lacks (backreferences, lookaround, possessive
quantifiers, atomic groups, ...) with its position and the RE2 way to say it; a plain
syntax error is explained by Python's `re`, whose messages carry a position; anything
else gets RE2's own message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import re2

ISTIO_MAX_REGEX_LENGTH = 1024
"""Istio's webhook rejects a `StringMatch.regex` longer than this (it stands in for RE2's
program size, which Go cannot compute)."""

ENVOY_MAX_PROGRAM_SIZE = 32768
"""`re2.max_program_size.error_level` as Istio's proxy bootstrap sets it: a larger
compiled program makes Envoy reject the route configuration."""

RE2_MAX_REPEAT = 1000
"""RE2 refuses a counted repetition `{n,m}` with n or m above this."""

RE2_SYNTAX = "https://github.com/google/re2/wiki/Syntax"

SIZE_HINT = (
    "use smaller counted repetitions ({n,m}) and fewer Unicode classes (\\pL), or split "
    "the regex over several match rules"
)

_RE2_FLAGS = frozenset("imsU")
_REPEAT = re.compile(r"\{(\d+)(,(\d*))?\}")


@dataclass(frozen=True, slots=True)
class RegexProblem:
    """Why a regex is refused: `offset` is the 0-based index in the pattern (None: the
    pattern as a whole), `reason` the problem and `hint` the RE2 way to write it."""

    offset: int | None
    reason: str
    hint: str


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # RE2 would otherwise print every refusal on stderr
    return options


_OPTIONS = _options()


def regex_problem(pattern: str) -> RegexProblem | None:
    """The first reason Istio or Envoy refuses `pattern`, or None when both accept it."""
    if pattern == "":
        return RegexProblem(
            None, "an empty regex is refused by Istio", "match any value with regex: '.*'"
        )
    if len(pattern) > ISTIO_MAX_REGEX_LENGTH:
        return RegexProblem(
            None,
            f"the regex is {len(pattern)} characters long; Istio refuses regexes longer "
            f"than {ISTIO_MAX_REGEX_LENGTH}",
            "shorten it, e.g. match a common prefix or split it over several match rules",
        )
    try:
        program = re2.compile(pattern, options=_OPTIONS)
    except re2.error as exc:
        return unsupported_construct(pattern) or _syntax_problem(pattern, exc)
    if program.programsize > ENVOY_MAX_PROGRAM_SIZE:
        return RegexProblem(
            None,
            f"its RE2 program has size {program.programsize}; Envoy refuses regexes larger "
            f"than {ENVOY_MAX_PROGRAM_SIZE} (re2.max_program_size.error_level)",
            SIZE_HINT,
        )
    return None


def _syntax_problem(pattern: str, exc: re2.error) -> RegexProblem:
    """A pattern RE2 refuses for a reason the scanner does not name.

    Python's `re` explains a plain syntax error with a position; its escapes differ from
    RE2's (`\\p{L}`, `\\z`, `\\C` are RE2's only), so a complaint about an escape, or an
    RE2 refusal Python would not share (size), is left to RE2's own message."""
    detail = _re2_message(exc)
    if "pattern too large" in detail:
        return RegexProblem(
            None,
            f"RE2: {detail} (its compiled program exceeds RE2's memory budget)",
            SIZE_HINT,
        )
    hint = f"write RE2 syntax ({RE2_SYNTAX})"
    if "invalid repetition size" in detail:
        hint = f"RE2 counts repetitions up to {RE2_MAX_REPEAT}; use + or * for longer runs"
    try:
        re.compile(pattern)
    except re.error as py_exc:
        if py_exc.pos is not None and not py_exc.msg.startswith("bad escape"):
            return RegexProblem(py_exc.pos, f"{py_exc.msg} at position {py_exc.pos}", hint)
    except (OverflowError, RecursionError, ValueError):  # pathological input: RE2 speaks
        pass
    fragment = detail.rpartition(": ")[2]
    offset = pattern.find(fragment) if fragment else -1
    where = f" at position {offset}" if offset >= 0 else ""
    return RegexProblem(offset if offset >= 0 else None, f"RE2: {detail}{where}", hint)


def _re2_message(exc: re2.error) -> str:
    detail = exc.args[0] if exc.args else ""
    if isinstance(detail, bytes):
        return detail.decode("utf-8", "replace")
    return str(detail)


def unsupported_construct(pattern: str) -> RegexProblem | None:
    """The first Perl/Python construct in `pattern` that RE2 does not have, if any.

    Walks the pattern once, skipping escaped characters and the insides of character
    classes (where `(?=` or `\\1` are not what they look like)."""
    index = 0
    after_quantifier = False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            problem = _escape_problem(pattern, index)
            if problem is not None:
                return problem
            index += 2
            after_quantifier = False
            continue
        if char == "[":
            index = _class_end(pattern, index)
            after_quantifier = False
            continue
        if char == "(" and pattern.startswith("?", index + 1):
            problem = _group_problem(pattern, index)
            if problem is not None:
                return problem
        if char == "+" and after_quantifier:
            return RegexProblem(
                index - 1,
                f"possessive quantifier {pattern[index - 1 : index + 1]!r} at position "
                f"{index - 1}; RE2 has no possessive quantifiers",
                "drop the trailing '+': RE2 never backtracks, so the plain quantifier is "
                "already linear-time",
            )
        after_quantifier, index = _quantifier(pattern, index)
    return None


def _quantifier(pattern: str, index: int) -> tuple[bool, int]:
    """(whether a quantifier ends at `index`, the index after it)."""
    char = pattern[index]
    if char in "*+?":
        lazy = pattern.startswith("?", index + 1)
        return (not lazy, index + 2 if lazy else index + 1)
    if char == "{":
        repeat = _REPEAT.match(pattern, index)
        if repeat is not None:
            end = repeat.end()
            lazy = pattern.startswith("?", end)
            return (not lazy, end + 1 if lazy else end)
    return False, index + 1


def _escape_problem(pattern: str, index: int) -> RegexProblem | None:
    following = pattern[index + 1 : index + 2]
    if following in "123456789" and following and not pattern[index + 2 : index + 3].isdigit():
        return RegexProblem(
            index,
            f"backreference \\{following} at position {index}; RE2 has no backreferences",
            "spell out the alternatives the group can take (e.g. '(a|b)-(a|b)' and check "
            "the equality in the service), or match the repeated value literally",
        )
    if following == "Z":
        return RegexProblem(
            index,
            f"\\Z at position {index} is Python's end of text; RE2 does not know it",
            "use \\z (or $, which also means end of text in RE2 without (?m))",
        )
    return None


_GROUPS: tuple[tuple[str, str, str], ...] = (
    ("(?<=", "lookbehind", "match the preceding text as part of the regex instead"),
    ("(?<!", "negative lookbehind", "match the allowed preceding text explicitly"),
    ("(?=", "lookahead", "match the following text as part of the regex instead"),
    ("(?!", "negative lookahead", "list what may follow instead (e.g. [^x] or an alternation)"),
    ("(?>", "atomic group", "use a plain non-capturing group (?:...): RE2 never backtracks"),
    ("(?P=", "named backreference", "spell out the alternatives the group can take"),
    ("(?#", "comment group", "remove the comment: RE2 has no (?#...)"),
    ("(?(", "conditional group", "write both cases as an alternation (a|b)"),
)


def _group_problem(pattern: str, index: int) -> RegexProblem | None:
    for opener, name, hint in _GROUPS:
        if pattern.startswith(opener, index):
            return RegexProblem(
                index,
                f"{name} {opener!r} at position {index}; RE2 has no {name}s",
                hint,
            )
    flags = re.match(r"\(\?([a-zA-Z]*)-?([a-zA-Z]*)[:)]", pattern[index:])
    if flags is not None:
        unknown = sorted(set(flags.group(1) + flags.group(2)) - _RE2_FLAGS)
        if unknown:
            return RegexProblem(
                index,
                f"inline flag {''.join(unknown)!r} at position {index}; RE2 knows only "
                "the flags i, m, s and U",
                "remove the flag (for x: write the regex without spaces and comments)",
            )
    return None


def _class_end(pattern: str, index: int) -> int:
    """The index after the character class that opens at `index` (`[]a]` and `[^]a]`
    hold a literal `]`; an escape never closes it)."""
    cursor = index + 1
    if pattern.startswith("^", cursor):
        cursor += 1
    if pattern.startswith("]", cursor):
        cursor += 1
    while cursor < len(pattern):
        char = pattern[cursor]
        if char == "\\":
            cursor += 2
            continue
        if char == "[" and pattern.startswith("[:", cursor):
            close = pattern.find(":]", cursor + 2)
            if close != -1:
                cursor = close + 2
                continue
        if char == "]":
            return cursor + 1
        cursor += 1
    return cursor
