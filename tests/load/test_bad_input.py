"""Bad input never crashes: every malformed file is a located finding, never a traceback.

The corpus lives in `tests/data/bad/`, one file per mistake, named for what is wrong.
Each file's first line states what meshc must report:

    # expect: MC102 8:3 duplicate key 'timeout' (first defined at line 7)
    # expect: note Deployment (apps/v1)

(`code line:col message-substring`, or `note` plus a substring of the skip note for a
document that is not meshc's). Cases that cannot be stored as text (binary junk, other
encodings, NUL bytes, huge files, CRLF, a BOM) are generated here with the same shape.

Each case is compiled in-process next to a valid Mesh and Service (the detailed
assertions), then the whole corpus goes through the real CLI in one subprocess, plus a
few single-case CLI runs.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from compiler.api import Compilation, compile_tree
from compiler.diagnostics import Severity
from compiler.load.discover import PolicyTree
from compiler.load.yamlnodes import MAX_FILE_BYTES
from tests.helpers import MESH, NOW, REPO, run_cli

CORPUS = REPO / "tests" / "data" / "bad"
NOW_FLAG = ("--now", "2026-11-25T12:00:00Z")

RATINGS = """\
apiVersion: meshc/v1
kind: Service
metadata: {name: ratings}
spec:
  ports: [{name: http, port: 9080, targetPort: 9080, protocol: http}]
"""
BASE = {"mesh.yaml": MESH.encode(), "ratings.yaml": RATINGS.encode()}
"""A valid mesh every case sits beside (the corpus refers to the `ratings` service)."""

_EXPECT = re.compile(
    r"^# expect: (?:(?P<code>MC\d{3}) (?P<line>\d+):(?P<col>\d+)|note) (?P<text>.+)$"
)


@dataclass(frozen=True, slots=True)
class Expect:
    """What one case must produce: a finding (code at line:col) or a skip note."""

    code: str | None
    line: int
    col: int
    text: str

    @property
    def is_note(self) -> bool:
        return self.code is None


def parse_expect(header: str) -> Expect:
    match = _EXPECT.match(header.strip())
    assert match, f"corpus header not understood: {header!r}"
    code = match["code"]
    if code is None:
        return Expect(None, 0, 0, match["text"])
    return Expect(code, int(match["line"]), int(match["col"]), match["text"])


def stored_cases() -> dict[str, tuple[bytes, Expect]]:
    cases: dict[str, tuple[bytes, Expect]] = {}
    for path in sorted(CORPUS.iterdir()):
        raw = path.read_bytes()
        header = raw.decode("utf-8").splitlines()[0]
        cases[path.name] = (raw, parse_expect(header))
    return cases


_NO_DOCUMENTS = Expect(None, 0, 0, "a file with no YAML documents")
_SERVICE = b"apiVersion: meshc/v1\nkind: Service\nmetadata: {name: details}\n"


def generated_cases() -> dict[str, tuple[bytes, Expect]]:
    """Cases whose bytes cannot live in a text file (or would be mangled by editors/git)."""
    dup_crlf = (
        b"apiVersion: meshc/v1\r\nkind: Resilience\r\nmetadata: {name: ratings}\r\n"
        b"spec:\r\n  service: ratings\r\n  timeout: 2s\r\n  timeout: 3s\r\n"
    )
    return {
        "binary-junk.yaml": (
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" + bytes(range(256)) * 4,
            Expect("MC107", 3, 1, "file contains NUL bytes; it is not a text file"),
        ),
        "binary-junk-without-nul.yaml": (
            b"apiVersion: meshc/v1\n" + bytes(range(0x80, 0x100)),
            Expect("MC107", 2, 1, "file is not valid UTF-8 (byte 0x80)"),
        ),
        "latin1-not-utf8.yaml": (
            _SERVICE.replace(b"details", "d\u00e9tails".encode("latin-1")) + b"spec: {}\n",
            Expect("MC107", 3, 19, "file is not valid UTF-8 (byte 0xe9)"),
        ),
        "utf16.yaml": (
            (_SERVICE + b"spec: {}\n").decode().encode("utf-16"),
            Expect("MC107", 1, 1, "file is UTF-16; meshc reads UTF-8 only"),
        ),
        "nul-byte.yaml": (
            _SERVICE + b"spec: {ports: [{name: ht\x00tp, port: 9080}]}\n",
            Expect("MC107", 4, 1, "file contains NUL bytes"),
        ),
        "control-character.yaml": (
            _SERVICE + b"spec: {ports: [{name: ht\x07tp, port: 9080}]}\n",
            Expect("MC107", 4, 25, "control character U+0007 is not allowed in YAML"),
        ),
        "huge-file.yaml": (
            _SERVICE + b"spec: {}\n" + b"# padding\n" * (MAX_FILE_BYTES // 10 + 1),
            Expect("MC107", 1, 1, f"file is larger than the {MAX_FILE_BYTES}-byte limit"),
        ),
        "crlf-duplicate-key.yaml": (
            dup_crlf,
            Expect("MC102", 7, 3, "duplicate key 'timeout' (first defined at line 6)"),
        ),
        "bom-unknown-field.yaml": (
            "\ufeff".encode() + _SERVICE + b"spec:\n  prots: []\n",
            Expect("MC105", 5, 3, "spec: unknown field 'prots'; did you mean 'ports'?"),
        ),
        "very-long-line.yaml": (
            b"apiVersion: meshc/v1\nkind: Service\nmetadata: {name: " + b"a" * 500_000 + b"}\n"
            b"spec: {ports: [{name: http, port: 9080}]}\n",
            Expect("MC103", 3, 18, "metadata.name: string should have at most 63 characters"),
        ),
        "deep-flow-nesting.yaml": (
            _SERVICE + b"spec: {ports: " + b"[" * 200_000 + b"]" * 200_000 + b"}\n",
            Expect("MC108", 4, 77, "nesting deeper than 64 levels"),
        ),
        "deep-compact-sequences.yaml": (
            _SERVICE + b"spec:\n  ports:\n  " + b"- " * 200_000 + b"x\n",
            Expect("MC108", 6, 127, "nesting deeper than 64 levels"),
        ),
        "empty.yaml": (b"", _NO_DOCUMENTS),
        "whitespace-only.yaml": (b"  \n\n   \n", _NO_DOCUMENTS),
    }


STORED = stored_cases()
GENERATED = generated_cases()
ALL = {**STORED, **GENERATED}


def compile_case(name: str, raw: bytes) -> Compilation:
    return compile_tree(PolicyTree(files={**BASE, name: raw}), now=NOW)


def check_case(compilation: Compilation, name: str, expect: Expect) -> None:
    """The case's finding is there, at the right place, with a meaningful message."""
    internal = [d for d in compilation.diagnostics if d.code == "MC000"]
    assert not internal, f"{name}: internal error {internal}"
    in_file = [d for d in compilation.diagnostics if d.span.file == name]
    if expect.is_note:
        blocking = [d for d in in_file if d.severity >= Severity.WARNING]
        assert not blocking, f"{name}: expected only a note, got {blocking}"
        notes = [n for n in compilation.notes if n.startswith(f"{name}: ")]
        assert any(expect.text in n for n in notes), f"{name}: notes were {compilation.notes}"
        return
    located = [(str(d.span), d.code, d.message) for d in in_file]
    matching = [
        d
        for d in in_file
        if d.code == expect.code and (d.span.line, d.span.col) == (expect.line, expect.col)
    ]
    assert matching, f"{name}: wanted {expect.code} at {expect.line}:{expect.col}, got {located}"
    assert any(expect.text in d.message for d in matching), f"{name}: messages were {located}"
    finding = matching[0]
    assert finding.severity == Severity.ERROR
    assert finding.hint, f"{name}: the finding should say how to fix it"
    assert len(finding.message) < 400, f"{name}: message too long to read: {finding.message[:80]}"


def test_corpus_is_big_enough_and_every_case_names_its_mistake() -> None:
    assert len(STORED) >= 45
    assert len(ALL) >= 60
    for name, (_, expect) in STORED.items():
        assert name.endswith((".yaml", ".yml")) and len(name) > 8, name
        assert expect.text.strip()


def test_the_base_tree_is_clean() -> None:
    compilation = compile_tree(PolicyTree(files=dict(BASE)), now=NOW)
    assert compilation.blocking(Severity.WARNING) == []


@pytest.mark.parametrize("name", sorted(ALL))
def test_bad_file_in_process(name: str) -> None:
    raw, expect = ALL[name]
    check_case(compile_case(name, raw), name, expect)


def test_custom_tags_are_never_constructed(tmp_path: Path) -> None:
    sentinel = tmp_path / "pwned"
    raw = (
        "apiVersion: meshc/v1\nkind: Service\nmetadata: {name: x}\n"
        f'spec: {{ports: !!python/object/apply:os.system ["touch {sentinel}"]}}\n'
    ).encode()
    compilation = compile_case("tag.yaml", raw)
    assert not sentinel.exists()
    assert [d.code for d in compilation.diagnostics if d.span.file == "tag.yaml"] == ["MC101"]


# -- the real CLI ------------------------------------------------------------------------


def write_case_dir(root: Path, cases: dict[str, tuple[bytes, Expect]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, raw in BASE.items():
        (root / name).write_bytes(raw)
    for name, (raw, _) in cases.items():
        (root / name).write_bytes(raw)
    return root


def assert_clean_process(result_stdout: str, result_stderr: str) -> None:
    for stream in (result_stdout, result_stderr):
        assert "Traceback" not in stream
        assert "internal error" not in stream


def assert_reported(stdout: str, stderr: str, name: str, expect: Expect) -> None:
    if expect.is_note:
        assert f"note: {name}: skipped" in stderr and expect.text in stderr, stderr[-2000:]
        return
    located = f"{name}:{expect.line}:{expect.col}: error[{expect.code}]"
    lines = [line for line in stdout.splitlines() if located in line]
    assert lines, f"{located} not in the output"
    assert any(expect.text in line for line in lines), lines


def test_whole_corpus_through_one_cli_run(tmp_path: Path) -> None:
    root = write_case_dir(tmp_path / "policies", ALL)
    result = run_cli("meshc", "lint", str(root), *NOW_FLAG)
    assert_clean_process(result.stdout, result.stderr)
    assert result.returncode == 1, result.stderr
    for name, (_, expect) in ALL.items():
        assert_reported(result.stdout, result.stderr, name, expect)


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("billion-laughs.yaml", 1),
        ("binary-junk.yaml", 1),
        ("load-balancer-not-a-form.yaml", 1),
        ("kubernetes-object.yaml", 0),
    ],
)
def test_single_bad_file_through_the_cli(tmp_path: Path, name: str, code: int) -> None:
    _, expect = ALL[name]
    root = write_case_dir(tmp_path / "policies", {name: ALL[name]})
    result = run_cli("meshc", "lint", str(root), *NOW_FLAG)
    assert_clean_process(result.stdout, result.stderr)
    assert result.returncode == code, result.stdout + result.stderr
    assert_reported(result.stdout, result.stderr, name, expect)


def test_a_bad_file_named_on_the_command_line(tmp_path: Path) -> None:
    root = write_case_dir(tmp_path / "policies", {})
    shutil.copy(CORPUS / "duplicate-key.yaml", root / "duplicate-key.yaml")
    result = run_cli("meshc", "lint", str(root / "duplicate-key.yaml"), *NOW_FLAG)
    assert_clean_process(result.stdout, result.stderr)
    assert result.returncode == 1
    expect = STORED["duplicate-key.yaml"][1]
    assert_reported(result.stdout, result.stderr, "duplicate-key.yaml", expect)


def test_json_output_of_a_bad_file_is_located(tmp_path: Path) -> None:
    name = "tab-indentation.yaml"
    root = write_case_dir(tmp_path / "policies", {name: ALL[name]})
    result = run_cli("meshc", "lint", str(root), "--format", "json", *NOW_FLAG)
    assert_clean_process(result.stdout, result.stderr)
    assert result.returncode == 1
    text = json.dumps(json.loads(result.stdout))
    assert "tab-indentation.yaml" in text and "MC101" in text
    assert "a tab is used for indentation" in text
