"""YAML text to plain data plus a position tree, on ruamel's C composer.

Composing is several times faster than ruamel's round-trip loader, but it neither detects
duplicate keys nor expands aliases (an alias is the same node object). Both checks, and
the alias-expansion budget that stops "billion laughs" documents, live in `_Walker`.
No tag other than YAML's core schema is ever constructed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from compiler.diagnostics import Diagnostic, Span

MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_NODES_PER_FILE = 1_000_000
MAX_ALIAS_EXPANSION = 10_000
MAX_DEPTH = 64

Path = tuple[str | int, ...]

_CORE = "tag:yaml.org,2002:"
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}


@dataclass(slots=True)
class Positions:
    """Where each value (and each mapping key) of one document sits in its file."""

    file: str
    values: dict[Path, Span] = field(default_factory=dict)
    keys: dict[Path, Span] = field(default_factory=dict)

    def value(self, path: Path) -> Span:
        """The span of the value at `path`, or of its nearest ancestor that exists."""
        while path not in self.values and path:
            path = path[:-1]
        return self.values.get(path, Span(self.file))

    def key(self, path: Path) -> Span:
        """The span of the key naming `path`, falling back to the value's span."""
        return self.keys.get(path) or self.value(path)


@dataclass(slots=True)
class ParsedDocument:
    index: int
    data: Any
    positions: Positions


@dataclass(slots=True)
class ParsedFile:
    file: str
    documents: list[ParsedDocument]
    problems: list[Diagnostic]
    lines: list[str]


class _Budget(Exception):
    """Raised inside the walk when a limit is exceeded; carries the located diagnostic."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


class _Walker:
    """Converts one composed document to plain Python data, recording spans."""

    def __init__(self, file: str, positions: Positions, problems: list[Diagnostic]) -> None:
        self.file = file
        self.positions = positions
        self.problems = problems
        self.nodes = 0
        self.alias_expansions = 0
        self.record = True

    def span(self, node: Node) -> Span:
        return Span.from_marks(self.file, node.start_mark, node.end_mark)

    def walk(self, node: Node, path: Path, stack: tuple[int, ...]) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES_PER_FILE:
            raise _Budget(
                Diagnostic(
                    "MC108",
                    self.span(node),
                    f"document has more than {MAX_NODES_PER_FILE} nodes",
                    "split the file or remove repeated content",
                )
            )
        if len(stack) > MAX_DEPTH:
            raise _Budget(
                Diagnostic(
                    "MC108",
                    self.span(node),
                    f"nesting deeper than {MAX_DEPTH} levels",
                    "intent documents are shallow; check for a recursive anchor",
                )
            )
        node_id = id(node)
        if node_id in stack:
            raise _Budget(
                Diagnostic("MC108", self.span(node), "recursive alias", "remove the self-referencing anchor")
            )
        if self.record:
            self.positions.values[path] = self.span(node)
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        inner = (*stack, node_id)
        if isinstance(node, SequenceNode):
            self.check_tag(node, "seq")
            return [self.walk_child(item, (*path, i), inner) for i, item in enumerate(node.value)]
        if isinstance(node, MappingNode):
            self.check_tag(node, "map")
            return self.mapping(node, path, inner)
        raise _Budget(Diagnostic("MC101", self.span(node), "unsupported YAML node"))

    def walk_child(self, node: Node, path: Path, stack: tuple[int, ...]) -> Any:
        """Walk a child; an anchor used again (an alias) counts against the expansion budget."""
        if id(node) in self.expanded:
            self.alias_expansions += 1
            if self.alias_expansions > MAX_ALIAS_EXPANSION:
                raise _Budget(
                    Diagnostic(
                        "MC108",
                        self.span(node),
                        f"aliases expand to more than {MAX_ALIAS_EXPANSION} copies",
                        "this looks like a 'billion laughs' document; write the values out",
                    )
                )
            was = self.record
            self.record = False
            try:
                return self.walk(node, path, stack)
            finally:
                self.record = was
        self.expanded.add(id(node))
        return self.walk(node, path, stack)

    expanded: set[int]

    def mapping(self, node: MappingNode, path: Path, stack: tuple[int, ...]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_seen: dict[str, Span] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise _Budget(
                    Diagnostic("MC101", self.span(key_node), "mapping keys must be plain strings")
                )
            if key_node.tag == _CORE + "merge":
                raise _Budget(
                    Diagnostic(
                        "MC101",
                        self.span(key_node),
                        "merge keys (<<) are not supported",
                        "write the keys out; intent documents should be explicit",
                    )
                )
            self.check_tag(key_node, None)
            key = str(key_node.value)
            key_span = self.span(key_node)
            if key in first_seen:
                self.problems.append(
                    Diagnostic(
                        "MC102",
                        key_span,
                        f"duplicate key {key!r} (first defined at line {first_seen[key].line})",
                        "remove one of the two; YAML keeps only the last silently",
                    )
                )
                continue
            first_seen[key] = key_span
            child_path = (*path, key)
            if self.record:
                self.positions.keys[child_path] = key_span
            result[key] = self.walk_child(value_node, child_path, stack)
        return result

    def check_tag(self, node: Node, kind: str | None) -> None:
        tag = str(node.tag)
        if tag.startswith(_CORE) and (kind is None or tag == _CORE + kind or isinstance(node, ScalarNode)):
            return
        raise _Budget(
            Diagnostic(
                "MC101",
                self.span(node),
                f"YAML tag {tag!r} is not allowed",
                "remove the tag; meshc reads plain YAML only (strings, numbers, booleans, lists, maps)",
            )
        )

    def scalar(self, node: ScalarNode) -> Any:
        tag = str(node.tag)
        value: str = node.value
        if not tag.startswith(_CORE):
            self.check_tag(node, None)
        kind = tag[len(_CORE) :]
        if kind == "str":
            return value
        if kind == "int":
            return _parse_int(value)
        if kind == "float":
            return _parse_float(value)
        if kind == "bool":
            return _BOOL.get(value, value)
        if kind == "null":
            return None
        if kind in ("timestamp", "binary", "omap", "pairs", "set", "value", "yaml"):
            return value
        raise _Budget(
            Diagnostic("MC101", self.span(node), f"YAML tag {tag!r} is not allowed", "remove the tag")
        )


def _parse_int(text: str) -> int | str:
    cleaned = text.replace("_", "")
    try:
        if cleaned.lower().startswith(("0x", "-0x", "+0x")):
            return int(cleaned, 16)
        if cleaned.lower().startswith(("0o", "-0o", "+0o")):
            return int(cleaned, 8)
        if cleaned.lower().startswith(("0b", "-0b", "+0b")):
            return int(cleaned, 2)
        return int(cleaned)
    except ValueError:
        return text


def _parse_float(text: str) -> float | str:
    lowered = text.lower().replace("_", "")
    if lowered in (".inf", "+.inf"):
        return float("inf")
    if lowered == "-.inf":
        return float("-inf")
    if lowered == ".nan":
        return float("nan")
    try:
        return float(lowered)
    except ValueError:
        return text


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, col


def decode_source(file: str, raw: bytes) -> tuple[str | None, Diagnostic | None]:
    """Bytes to text, or the located reason they are not an intent file."""
    if len(raw) > MAX_FILE_BYTES:
        return None, Diagnostic(
            "MC107",
            Span(file),
            f"file is larger than the {MAX_FILE_BYTES}-byte limit",
            "split it into several files",
        )
    if b"\x00" in raw:
        offset = raw.index(b"\x00")
        line = raw.count(b"\n", 0, offset) + 1
        return None, Diagnostic(
            "MC107", Span(file, line, 1), "file contains NUL bytes; it is not a text file",
            "remove the binary file from the policy root or exclude it in meshc.yaml",
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, Diagnostic(
            "MC107",
            Span(file, line, col),
            f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
            "save the file as UTF-8",
        )
    for offset, char in enumerate(text):
        if (ord(char) < 0x20 and char not in "\t\n\r") or char in "\x7f\ufffe\uffff":
            line, col = _line_col(text, offset)
            return None, Diagnostic(
                "MC107", Span(file, line, col),
                f"control character U+{ord(char):04X} is not allowed in YAML",
                "remove it",
            )
    return text, None


_YAML = YAML(typ="safe", pure=False)


def parse_source(file: str, raw: bytes) -> ParsedFile:
    """Parse one file's bytes into documents; problems are located, never raised."""
    text, problem = decode_source(file, raw)
    if text is None:
        assert problem is not None
        return ParsedFile(file, [], [problem], [])
    lines = text.splitlines()
    problems: list[Diagnostic] = []
    documents: list[ParsedDocument] = []
    try:
        for index, node in enumerate(_YAML.compose_all(text)):
            if node is None:
                continue
            positions = Positions(file)
            walker = _Walker(file, positions, problems)
            walker.expanded = set()
            try:
                data = walker.walk(node, (), ())
            except _Budget as exc:
                problems.append(exc.diagnostic)
                continue
            documents.append(ParsedDocument(index, data, positions))
    except MarkedYAMLError as exc:
        problems.append(_yaml_error(file, exc, lines))
    except YAMLError as exc:
        problems.append(Diagnostic("MC101", Span(file), f"YAML error: {exc}", "fix the YAML syntax"))
    except RecursionError:
        problems.append(
            Diagnostic("MC108", Span(file), "YAML nesting is too deep", "flatten the document")
        )
    return ParsedFile(file, documents, problems, lines)


def _yaml_error(file: str, exc: MarkedYAMLError, lines: list[str]) -> Diagnostic:
    mark = exc.problem_mark or exc.context_mark
    span = Span.from_marks(file, mark) if mark is not None else Span(file)
    problem = (exc.problem or "invalid YAML").strip()
    context = (exc.context or "").strip()
    message = f"YAML syntax error: {problem}" + (f" ({context})" if context else "")
    hint = "fix the YAML syntax"
    if 0 < span.line <= len(lines) and "\t" in lines[span.line - 1]:
        hint = "YAML does not allow tabs for indentation; use spaces"
    return Diagnostic("MC101", span, message, hint)
