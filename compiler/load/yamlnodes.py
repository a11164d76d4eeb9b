"""YAML text to plain data plus a position tree, on ruamel's C composer.

Composing is several times faster than ruamel's round-trip loader, but it neither detects
duplicate keys nor expands aliases (an alias is the same node object). Both checks, and
the alias-expansion budget that stops "billion laughs" documents, live in `_Walker`.
The C composer recurses once per nesting level and crashes the process on inputs like
`[[[[...` or `- - - ...` thousands of levels deep, so a file with enough characters to nest
that deep has its depth checked on the (iterative) parser events first.
No tag other than YAML's core schema is ever constructed.

Every string the walk returns (keys and values) is interned: a tree repeats a few
thousand distinct strings (keys, kinds, names, methods, paths) some 150 times each, and
the validated models share these objects, so a compiled tree holds each string once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from sys import intern
from typing import Any

from ruamel.yaml.cyaml import CParser  # type: ignore[attr-defined]
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import CollectionEndEvent, CollectionStartEvent
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.resolver import VersionedResolver
from ruamel.yaml.tag import Tag

from compiler.diagnostics import Diagnostic, Span

MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_NODES_PER_FILE = 1_000_000
MAX_ALIAS_EXPANSION = 10_000
MAX_EXPANDED_NODES = 100_000
"""Nodes walked again through aliases; bounds the work a few anchors can cause."""
MAX_DEPTH = 64
FAST_PATH_STARTS = 2_000
"""Up to this many characters that can open a collection (`[{-?:`), nesting cannot get deep
enough to overflow the C stack of ruamel's composer (it recurses per level, and crashes
the process somewhere past 10,000 levels); above it, parser events are checked first."""

Path = tuple[str | int, ...]

_CORE = "tag:yaml.org,2002:"
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}


Packed = tuple[int, int, int, int]
"""A node's 0-based (line, column, end line, end column), turned into a `Span` on lookup.

The walk records one of these per node; building `Span` objects only for the few nodes a
finding points at keeps the hot path cheap (a 1,000-service tree has ~250,000 nodes)."""


@dataclass(slots=True)
class Positions:
    """Where each value (and each mapping key) of one document sits in its file."""

    file: str
    values: dict[Path, Packed] = field(default_factory=dict)
    keys: dict[Path, Packed] = field(default_factory=dict)

    def value(self, path: Path) -> Span:
        """The span of the value at `path`, or of its nearest ancestor that exists."""
        while path not in self.values and path:
            path = path[:-1]
        packed = self.values.get(path)
        return Span(self.file) if packed is None else Span.from_zero_based(self.file, *packed)

    def key(self, path: Path) -> Span:
        """The span of the key naming `path`, falling back to the value's span."""
        packed = self.keys.get(path)
        return self.value(path) if packed is None else Span.from_zero_based(self.file, *packed)


class FileSource:
    """One file's bytes, and what is derived from them again only when asked: its lines
    and the positions of its documents.

    A compiled tree keeps every file's result for as long as it lives, but spans are
    looked up only for the few documents a finding points at and lines only for the files
    a report quotes; keeping each file's position tables and lines made up over half of
    the memory of a lint (~130 KB per service). Re-parsing the bytes gives the same tables
    the first parse built, so spans are unchanged."""

    __slots__ = ("_positions", "file", "raw")

    def __init__(self, file: str, raw: bytes) -> None:
        self.file = file
        self.raw = raw
        self._positions: dict[int, Positions] | None = None

    def lines(self) -> list[str]:
        """The file's lines as `parse_source` splits them (none when it does not decode);
        a new list each call, kept by no one here."""
        text, _ = decode_source(self.file, self.raw)
        return [] if text is None else text.splitlines()

    def mentions(self, marker: str) -> bool:
        """Whether the text may contain the ASCII `marker` (checked on the bytes: UTF-8
        encodes ASCII as itself), so a scan for it can skip most files undecoded."""
        return marker.encode() in self.raw

    def positions(self, index: int) -> Positions:
        """The positions of document `index` (parsed once for all the file's documents)."""
        if self._positions is None:
            parsed = parse_source(self.file, self.raw)
            self._positions = {doc.index: doc.positions for doc in parsed.documents}
        return self._positions.get(index) or Positions(self.file)

    def same(self, other: FileSource) -> bool:
        return self.file == other.file and (self.raw is other.raw or self.raw == other.raw)


class LazyPositions(Positions):
    """The positions of one document, taken from its `FileSource` on first lookup.

    Equal to another when both come from equal bytes and the same document (the tables
    would be equal), so comparing two unchanged results builds no table."""

    __slots__ = ("_index", "_source")

    def __init__(self, source: FileSource, index: int) -> None:
        super().__init__(source.file)
        self._source: FileSource | None = source
        self._index = index

    def _fill(self) -> None:
        source, self._source = self._source, None
        if source is not None:
            found = source.positions(self._index)
            self.values, self.keys = found.values, found.keys

    def value(self, path: Path) -> Span:
        self._fill()
        return Positions.value(self, path)

    def key(self, path: Path) -> Span:
        self._fill()
        return Positions.key(self, path)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Positions):
            return NotImplemented
        if isinstance(other, LazyPositions) and self._source and other._source:
            return self._index == other._index and self._source.same(other._source)
        self._fill()
        if isinstance(other, LazyPositions):
            other._fill()
        return (self.file, self.values, self.keys) == (other.file, other.values, other.keys)

    __hash__ = None  # type: ignore[assignment]


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


class _CoreResolver(VersionedResolver):
    """ruamel's YAML 1.2 resolver with its tables looked up once and its tags shared.

    Under the C parser, ruamel's resolver recomputes the YAML version (through two caught
    AttributeErrors) and builds a new `Tag` for every node, which costs more than the C
    composing itself. The version is always the default one here (the C parser does not
    expose `%YAML` directives to the resolver), so the table is fixed: same tags, same
    regular expressions, same order as `VersionedResolver.resolve`.
    """

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is ScalarNode:
            if implicit[0]:
                for tag, regexp in _IMPLICIT.get(value[:1], _FALLBACK):
                    if regexp.match(value):
                        return tag
            return _STR
        if kind is MappingNode:
            return _MAP
        if kind is SequenceNode:
            return _SEQ
        return super().resolve(kind, value, implicit)


def _implicit_table() -> tuple[dict[str, tuple[tuple[Tag, Any], ...]], tuple[tuple[Tag, Any], ...]]:
    """First character -> ((shared tag, regexp), ...), as VersionedResolver would pick them."""
    table: dict[str, list[tuple[str, Any]]] = VersionedResolver().versioned_resolver
    fallback = list(table.get(None, []))  # type: ignore[call-overload]
    out: dict[str, tuple[tuple[Tag, Any], ...]] = {}
    for first, entries in table.items():
        if first is None:
            continue
        out[first] = tuple((_shared_tag(tag), regexp) for tag, regexp in [*entries, *fallback])
    return out, tuple((_shared_tag(tag), regexp) for tag, regexp in fallback)


_SHARED_TAGS: dict[str, Tag] = {}


def _shared_tag(suffix: str) -> Tag:
    return _SHARED_TAGS.setdefault(suffix, Tag(suffix=suffix))


_STR = _shared_tag(_CORE + "str")
_SEQ = _shared_tag(_CORE + "seq")
_MAP = _shared_tag(_CORE + "map")
_IMPLICIT, _FALLBACK = _implicit_table()
_SCALAR_KIND: dict[int, str] = {}


def _scalar_kind(tag: Tag) -> str | None:
    """The core-schema kind of a resolver-made tag (None for a tag written in the file)."""
    return _SCALAR_KIND.get(id(tag)) if _SHARED_TAGS.get(tag.suffix) is tag else None


for _suffix, _tag in _SHARED_TAGS.items():
    _SCALAR_KIND[id(_tag)] = _suffix[len(_CORE) :]


class _Walker:
    """Converts one composed document to plain Python data, recording spans."""

    def __init__(self, file: str, positions: Positions, problems: list[Diagnostic]) -> None:
        self.file = file
        self.values = positions.values
        self.keys = positions.keys
        self.problems = problems
        self.nodes = 0
        self.alias_expansions = 0
        self.expanded_nodes = 0
        self.alias_site: Path = ()
        self.record = True
        self.expanded: set[int] = set()
        self.stack: set[int] = set()

    def span(self, node: Node) -> Span:
        return Span.from_marks(self.file, node.start_mark, node.end_mark)

    def walk(self, node: Node, path: Path) -> Any:
        self.nodes += 1
        if not self.record:
            self.expanded_nodes += 1
            if self.expanded_nodes > MAX_EXPANDED_NODES:
                raise self.alias_budget(f"aliases expand to more than {MAX_EXPANDED_NODES} nodes")
        if self.nodes > MAX_NODES_PER_FILE:
            raise _Budget(
                Diagnostic(
                    "MC108",
                    self.span(node),
                    f"document has more than {MAX_NODES_PER_FILE} nodes",
                    "split the file or remove repeated content",
                )
            )
        if self.record:
            start, end = node.start_mark, node.end_mark
            self.values[path] = (start.line, start.column, end.line, end.column)
        if len(self.stack) > MAX_DEPTH:
            raise _Budget(
                Diagnostic(
                    "MC108",
                    self.span(node),
                    f"nesting deeper than {MAX_DEPTH} levels",
                    "intent documents are shallow; check for a recursive anchor",
                )
            )
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        node_id = id(node)
        if node_id in self.stack:
            raise _Budget(
                Diagnostic(
                    "MC108",
                    self.span(node),
                    "recursive alias: an anchor contains an alias to itself",
                    "remove the self-referencing alias",
                )
            )
        self.stack.add(node_id)
        try:
            if isinstance(node, SequenceNode):
                if node.ctag is not _SEQ:
                    self.check_tag(node, "seq")
                return [self.walk_child(item, (*path, i)) for i, item in enumerate(node.value)]
            if isinstance(node, MappingNode):
                if node.ctag is not _MAP:
                    self.check_tag(node, "map")
                return self.mapping(node, path)
        finally:
            self.stack.discard(node_id)
        raise _Budget(Diagnostic("MC101", self.span(node), "unsupported YAML node"))

    def walk_child(self, node: Node, path: Path) -> Any:
        """Walk a child; an anchor used again (an alias) counts against the expansion budget."""
        node_id = id(node)
        if node_id in self.expanded:
            self.alias_expansions += 1
            if self.alias_expansions > MAX_ALIAS_EXPANSION:
                raise self.alias_budget(f"aliases expand to more than {MAX_ALIAS_EXPANSION} copies")
            was = self.record
            if was:
                self.alias_site = path
            self.record = False
            try:
                return self.walk(node, path)
            finally:
                self.record = was
        self.expanded.add(node_id)
        if (
            node.__class__ is ScalarNode
            and node.ctag is _STR
            and self.record
            and len(self.stack) <= MAX_DEPTH
            and self.nodes < MAX_NODES_PER_FILE
        ):
            # The common case inline (more than half of all nodes): a plain string seen for
            # the first time; `walk` would record it and return its value the same way.
            self.nodes += 1
            start, end = node.start_mark, node.end_mark
            self.values[path] = (start.line, start.column, end.line, end.column)
            return intern(node.value)
        return self.walk(node, path)

    def alias_budget(self, problem: str) -> _Budget:
        """The finding for an alias bomb, at the container holding the outermost alias used.

        A composed alias is the anchored node itself, so its marks are the anchor's; the
        place the user can act on is where the alias is used, which the walk remembers.
        """
        site = self.alias_site
        packed = self.values.get(site[:-1]) if site else None
        span = Span(self.file) if packed is None else Span.from_zero_based(self.file, *packed)
        where = _dotted(site[:-1]) if site else "the document"
        return _Budget(
            Diagnostic(
                "MC108",
                span,
                f"{problem} (in {where})",
                "this looks like a 'billion laughs' document; write the values out",
            )
        )

    def mapping(self, node: MappingNode, path: Path) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_seen: dict[str, Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise _Budget(
                    Diagnostic(
                        "MC101",
                        self.span(key_node),
                        "mapping keys must be plain strings, not a list or a mapping",
                        "use a plain string as the key",
                    )
                )
            if key_node.ctag is not _STR:
                if str(key_node.tag) == _CORE + "merge":
                    raise _Budget(
                        Diagnostic(
                            "MC101",
                            self.span(key_node),
                            "merge keys (<<) are not supported",
                            "write the keys out; intent documents should be explicit",
                        )
                    )
                self.check_tag(key_node, None)
            key = intern(str(key_node.value))
            if key in first_seen:
                first_line = first_seen[key].start_mark.line + 1
                self.problems.append(
                    Diagnostic(
                        "MC102",
                        self.span(key_node),
                        f"duplicate key {key!r} (first defined at line {first_line})",
                        "remove one of the two; YAML keeps only the last silently",
                    )
                )
                continue
            first_seen[key] = key_node
            child_path = (*path, key)
            if self.record:
                start, end = key_node.start_mark, key_node.end_mark
                self.keys[child_path] = (start.line, start.column, end.line, end.column)
            result[key] = self.walk_child(value_node, child_path)
        return result

    def check_tag(self, node: Node, kind: str | None) -> None:
        tag = str(node.tag)
        core = tag.startswith(_CORE)
        if core and (kind is None or tag == _CORE + kind or isinstance(node, ScalarNode)):
            return
        raise _Budget(
            Diagnostic(
                "MC101",
                self.span(node),
                f"YAML tag {tag!r} is not allowed",
                "remove the tag; meshc reads plain YAML only "
                "(strings, numbers, booleans, lists, maps)",
            )
        )

    def scalar(self, node: ScalarNode) -> Any:
        value: str = node.value
        ctag = node.ctag
        if ctag is _STR:
            return intern(value)
        kind = _scalar_kind(ctag)
        if kind is None:
            tag = str(ctag)
            if not tag.startswith(_CORE):
                self.check_tag(node, None)
            kind = tag[len(_CORE) :]
        if kind == "str":
            return intern(value)
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
            Diagnostic(
                "MC101", self.span(node), f"YAML tag {str(ctag)!r} is not allowed", "remove the tag"
            )
        )


def _dotted(path: Path) -> str:
    """A path as users write it: `spec.versions.b[3]`."""
    text = ""
    for segment in path:
        text += f"[{segment}]" if isinstance(segment, int) else ("." if text else "") + segment
    return text or "the document"


def _is_empty(node: Node) -> bool:
    """An empty document (`---` followed by nothing): nothing to read, nothing to report."""
    return isinstance(node, ScalarNode) and node.value == "" and not node.style


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


_OTHER_ENCODINGS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)
"""Byte-order marks of encodings YAML allows but meshc does not read (longest first)."""


def decode_source(file: str, raw: bytes) -> tuple[str | None, Diagnostic | None]:
    """Bytes to text, or the located reason they are not an intent file."""
    if len(raw) > MAX_FILE_BYTES:
        return None, Diagnostic(
            "MC107",
            Span(file),
            f"file is larger than the {MAX_FILE_BYTES}-byte limit",
            "split it into several files",
        )
    for bom, encoding in _OTHER_ENCODINGS:
        if raw.startswith(bom):
            return None, Diagnostic(
                "MC107",
                Span(file),
                f"file is {encoding}; meshc reads UTF-8 only",
                "save the file as UTF-8",
            )
    if b"\x00" in raw:
        offset = raw.index(b"\x00")
        line = raw.count(b"\n", 0, offset) + 1
        return None, Diagnostic(
            "MC107",
            Span(file, line, 1),
            "file contains NUL bytes; it is not a text file",
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
    control = _CONTROL.search(text)
    if control is not None:
        char = control.group()
        line, col = _line_col(text, control.start())
        return None, Diagnostic(
            "MC107",
            Span(file, line, col),
            f"control character U+{ord(char):04X} is not allowed in YAML",
            "remove it",
        )
    return text, None


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
"""Characters YAML forbids in a stream (tab, LF and CR are allowed)."""


class _Composer(CParser, _CoreResolver):  # type: ignore[misc]
    """ruamel's C parser and composer with the core resolver, as one class made once.

    `YAML.compose_all` builds a new loader class for every call, whose instance refers to
    itself (`_parser`, `_composer`, `loadumper`): each file's loader, with the ~64 KB of
    buffers libyaml mallocs for it (invisible to tracemalloc), lived until the next cycle
    collection. A lint pauses the collector and then freezes what it built, so they were
    never freed: ~35 KB of resident memory per file. This one holds no reference to
    itself and is freed as soon as its file is composed."""

    def __init__(self, text: str) -> None:
        CParser.__init__(self, text)
        _CoreResolver.__init__(self)


def _compose_all(text: str) -> Iterator[Node]:
    """Every document of `text`, composed (as `YAML(typ="safe").compose_all`)."""
    composer = _Composer(text)
    try:
        while composer.check_node():
            yield composer.get_node()
    finally:
        composer.dispose()


def _events(text: str) -> Iterator[Any]:
    """The parser events of `text` (as `YAML(typ="safe").parse`)."""
    composer = _Composer(text)
    try:
        while composer.check_event():
            yield composer.get_event()
    finally:
        composer.dispose()


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
        if sum(text.count(c) for c in "[{-?:") > FAST_PATH_STARTS:
            deep = _nesting_problem(file, text)
            if deep is not None:
                return ParsedFile(file, [], [deep], lines)
        for index, node in enumerate(_compose_all(text)):
            if node is None or _is_empty(node):
                continue
            positions = Positions(file)
            walker = _Walker(file, positions, problems)
            try:
                data = walker.walk(node, ())
            except _Budget as exc:
                problems.append(exc.diagnostic)
                continue
            documents.append(ParsedDocument(index, data, positions))
    except MarkedYAMLError as exc:
        problems.append(_yaml_error(file, exc, lines))
    except YAMLError as exc:
        problems.append(
            Diagnostic("MC101", Span(file), f"YAML error: {exc}", "fix the YAML syntax")
        )
    except RecursionError:
        problems.append(
            Diagnostic("MC108", Span(file), "YAML nesting is too deep", "flatten the document")
        )
    return ParsedFile(file, documents, problems, lines)


def _nesting_problem(file: str, text: str) -> Diagnostic | None:
    """The first collection nested deeper than MAX_DEPTH, found on the parser's event stream.

    The event parser is iterative, so this is safe on any input where composing is not:
    `[[[[...` or `- - - ...` many thousand levels deep would crash the composer.
    """
    depth = 0
    for event in _events(text):
        if isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                return Diagnostic(
                    "MC108",
                    Span.from_marks(file, event.start_mark),
                    f"nesting deeper than {MAX_DEPTH} levels",
                    "intent documents are shallow; flatten the document",
                )
        elif isinstance(event, CollectionEndEvent):
            depth -= 1
    return None


def _yaml_error(file: str, exc: MarkedYAMLError, lines: list[str]) -> Diagnostic:
    problem = (exc.problem or "invalid YAML").strip()
    context = (exc.context or "").strip()
    mark = exc.problem_mark or exc.context_mark
    hint = "fix the YAML syntax"
    opened = exc.context_mark
    if opened is not None and _at_end(exc.problem_mark, lines):
        # an unclosed quote or bracket is only noticed at the end of the file; the place to
        # fix is where it was opened
        mark = opened
        what = context.removeprefix("while scanning a ").removeprefix("while parsing a ")
        problem, context = f"this {what or 'construct'} is never closed", ""
        hint = "close the quote or bracket opened here"
    elif opened is not None and mark is not None and opened.line != mark.line and context:
        context += f" started at line {opened.line + 1}"
    span = Span.from_marks(file, mark) if mark is not None else Span(file)
    message = f"YAML syntax error: {problem}" + (f" ({context})" if context else "")
    line = lines[span.line - 1] if 0 < span.line <= len(lines) else ""
    if "\t" in line[: len(line) - len(line.lstrip())]:
        message = "YAML syntax error: a tab is used for indentation"
        hint = "YAML allows only spaces for indentation; replace the tab"
    elif "incompatible YAML document" in problem:
        hint = "remove the %YAML directive; meshc reads YAML 1.2"
    elif "expected <document start>" in problem:
        hint = "start the next document with a '---' line"
    return Diagnostic("MC101", span, message, hint)


def _at_end(mark: Any, lines: list[str]) -> bool:
    """Whether a ruamel mark sits at (or past) the end of the text."""
    if mark is None:
        return False
    last = len(lines) - 1
    return bool(mark.line > last or (mark.line == last and mark.column >= len(lines[last])))
