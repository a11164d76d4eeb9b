"""Incremental linting (`LintCache`) gives exactly the from-scratch findings.

A generated mesh (tests/bench/generate.py) is edited one file at a time with random
semantic edits (renamed services, new or dropped calls, deny rules, shared identities,
wildcards, shifted lines, deleted files, mesh settings...). After every edit the compile
that reuses the caches of the previous compiles must report byte-identical diagnostics to
a compile from empty caches — also when the lint cache went through its on-disk form.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from compiler.api import Compilation, FileCache, compile_tree
from compiler.cache import plain_lint, restore_lint_cache
from compiler.lint.registry import REGISTRY, LintContext
from compiler.lint.subjects import LintCache, Subject, SubjectContext, subjects_of
from compiler.load.discover import PolicyTree
from tests.bench.generate import generate_mesh
from tests.helpers import NOW

Edit = Callable[[dict[str, bytes], str, random.Random], None]


def _mesh(tmp_path: Path, services: int = 36, seed: int = 0) -> dict[str, bytes]:
    generate_mesh(tmp_path, services=services, rules_per_service=4, seed=seed)
    return {str(p.relative_to(tmp_path)): p.read_bytes() for p in sorted(tmp_path.rglob("*.yaml"))}


def _service_names(files: dict[str, bytes]) -> list[str]:
    return [f"{name.split('/')[0]}/{Path(name).stem}" for name in files if "/" in name]


def _sub(files: dict[str, bytes], name: str, pattern: str, repl: str) -> None:
    files[name] = re.sub(pattern, repl, files[name].decode(), count=1).encode()


def rename_service(files: dict[str, bytes], name: str, rng: random.Random) -> None:
    _sub(files, name, r"(kind: Service\nmetadata:\n  name: )([\w-]+)", r"\g<1>\g<2>-renamed")


def drop_calls(files: dict[str, bytes], name: str, rng: random.Random) -> None:
    _sub(files, name, r"calls: \[[^\]]*\]", "calls: []")


def add_call(files: dict[str, bytes], name: str, rng: random.Random) -> None:
    other = rng.choice(_service_names(files))
    if b"calls: [" in files[name]:
        _sub(files, name, r"calls: \[", f"calls: [{other}, ")
    else:
        _sub(files, name, r"(  versions:\n(    .*\n)+)", f"\\g<1>  calls: [{other}]\n")


def deny_rule(files: dict[str, bytes], name: str, rng: random.Random) -> None:
    _sub(files, name, r"(  - from: \[[^\n]*\]\n)", r"\g<1>    action: deny\n")


def shared_identity(files: dict[str, bytes], name: str, rng: random.Random) -> None:
    _sub(files, name, r"identity: [\w-]+", "identity: shared-sa")


def wildcard_source(files: dict[str, bytes], name: str, rng: random.Random) -> None:
    _sub(files, name, r"\{service: [\w/-]+\}", '{service: "*"}')


def namespace_source(files: dict[str, bytes], name: str, rng: random.Random) -> None:
    namespace = rng.choice(_service_names(files)).split("/")[0]
    _sub(files, name, r"\{service: [\w/-]+\}", f"{{namespace: {namespace}}}")


def identity_source(files: dict[str, bytes], name: str, rng: random.Random) -> None:
    _sub(files, name, r"\{service: ([\w-]+)/([\w-]+)\}", r"{identity: \g<1>/\g<2>-sa}")


def no_protocol(files: dict[str, bytes], name: str, rng: random.Random) -> None:
    _sub(files, name, r", protocol: http\}", "}")


def shift_lines(files: dict[str, bytes], name: str, rng: random.Random) -> None:
    files[name] = b"# moved down\n\n" + files[name]


def delete_file(files: dict[str, bytes], name: str, rng: random.Random) -> None:
    del files[name]


def orphan_policy(files: dict[str, bytes], name: str, rng: random.Random) -> None:
    namespace = name.split("/")[0]
    files[f"{namespace}/orphan-{rng.randrange(1000)}.yaml"] = (
        "apiVersion: meshc/v1\nkind: AccessPolicy\n"
        f"metadata: {{name: ghost, namespace: {namespace}}}\n"
        "spec:\n  service: ghost\n  rules:\n  - from: [{service: nobody}]\n"
    ).encode()


def mesh_setting(files: dict[str, bytes], name: str, rng: random.Random) -> None:
    text = files["mesh.yaml"].decode()
    if rng.random() < 0.5:
        text = text.replace("defaultAction: deny", "defaultAction: allow")
    else:
        text = text.replace("trustDomain: bench.local", "trustDomain: other.local")
    files["mesh.yaml"] = text.encode()


EDITS: tuple[Edit, ...] = (
    rename_service,
    drop_calls,
    add_call,
    deny_rule,
    shared_identity,
    wildcard_source,
    namespace_source,
    identity_source,
    no_protocol,
    shift_lines,
    delete_file,
    orphan_policy,
    mesh_setting,
)


def _rendered(compilation: Compilation) -> list[str]:
    return [
        f"{d.span.file}:{d.span.line}:{d.span.col}-{d.span.end_line}:{d.span.end_col} "
        f"{d.code} {d.severity.label} {d.message} | {d.hint} | {d.suppressed_reason}"
        for d in compilation.diagnostics
    ]


def _scratch(files: dict[str, bytes]) -> list[str]:
    return _rendered(compile_tree(PolicyTree(files=dict(files)), now=NOW))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_incremental_findings_equal_from_scratch_after_random_one_file_edits(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    files = _mesh(tmp_path, seed=seed)
    originals = dict(files)
    file_cache, lint_cache = FileCache(), LintCache()
    first = compile_tree(
        PolicyTree(files=dict(files)), now=NOW, cache=file_cache, lint_cache=lint_cache
    )
    assert _rendered(first) == _scratch(files)
    previous = _rendered(first)
    changed_steps = 0
    for step in range(14):
        candidates = sorted(name for name in files if "/" in name and not name.startswith(("x",)))
        name = rng.choice(candidates)
        if step % 5 == 4 and name in originals:
            files[name] = originals[name]  # back to an earlier content: cache entries reappear
        else:
            rng.choice(EDITS)(files, name, rng)
        if step % 3 == 2:  # through the on-disk form, as the CLI's next run would see it
            lint_cache = restore_lint_cache(plain_lint(lint_cache))
        tree = PolicyTree(files=dict(files))
        incremental = compile_tree(tree, now=NOW, cache=file_cache, lint_cache=lint_cache)
        got = _rendered(incremental)
        assert got == _scratch(files), f"seed {seed}, step {step}: {name}"
        changed_steps += got != previous
        previous = got
    # the edits are real: most of them change what lint reports
    assert changed_steps >= 7


def test_identity_change_of_a_service_named_only_by_identity_is_seen(tmp_path: Path) -> None:
    """A source `{identity: ns/sa}` depends on a service it does not name: the mesh-wide
    part of the fingerprint (every service's identity) must catch that service's edit."""
    files = _mesh(tmp_path, services=30)
    lint_cache = LintCache()
    compile_tree(PolicyTree(files=dict(files)), now=NOW, lint_cache=lint_cache)
    policy_file = next(n for n in sorted(files) if b"{service: " in files[n] and "/" in n)
    match = re.search(rb"\{service: ([\w-]+)/([\w-]+)\}", files[policy_file])
    assert match is not None
    source = match.group(0).decode()
    identity = f"{{identity: {match.group(1).decode()}/{match.group(2).decode()}-sa}}"
    files[policy_file] = files[policy_file].decode().replace(source, identity).encode()
    compile_tree(PolicyTree(files=dict(files)), now=NOW, lint_cache=lint_cache)
    named = f"{match.group(1).decode()}/{match.group(2).decode()}.yaml"
    shared_identity(files, named, random.Random(0))
    again = compile_tree(PolicyTree(files=dict(files)), now=NOW, lint_cache=lint_cache)
    assert _rendered(again) == _scratch(files)
    unknown = [d for d in again.diagnostics if d.code == "MC204"]
    assert unknown and unknown[0].span.file == policy_file
    assert "is not the identity of any declared Service" in unknown[0].message


def test_one_file_edit_reuses_the_other_subjects(tmp_path: Path) -> None:
    files = _mesh(tmp_path, services=40)
    lint_cache = LintCache()
    compile_tree(PolicyTree(files=dict(files)), now=NOW, lint_cache=lint_cache)
    name = sorted(n for n in files if "/" in n)[20]
    add_call(files, name, random.Random(0))
    edited = compile_tree(PolicyTree(files=dict(files)), now=NOW, lint_cache=lint_cache)
    subjects = len(subjects_of(edited.model))
    assert subjects >= 40
    assert subjects - 5 <= lint_cache.reused < subjects  # the edited one is re-linted
    assert any(d.code == "MC407" for d in edited.diagnostics)  # the new call is denied


def test_subject_rule_check_over_the_whole_model_matches_per_subject(tmp_path: Path) -> None:
    """`Rule.check(ctx)` of a subject rule (what older callers use) runs every subject."""
    files = _mesh(tmp_path, services=20)
    deny_rule(files, sorted(n for n in files if "/" in n)[3], random.Random(0))
    compilation = compile_tree(PolicyTree(files=files), now=NOW)
    ctx = LintContext(compilation.model, NOW)
    scoped = SubjectContext(compilation.model)
    subject_rules = [r for r in REGISTRY.values() if r.subject_check is not None]
    assert len(subject_rules) >= 10
    for registered in subject_rules:
        assert registered.check is not None and registered.subject_check is not None
        whole = list(registered.check(ctx))
        per_subject = [
            finding
            for subject in subjects_of(compilation.model).values()
            for finding in registered.subject_check(scoped, subject)
        ]
        assert whole == per_subject, registered.code


def test_restored_lint_cache_skips_malformed_entries() -> None:
    malformed: Any = {
        ("ns", "svc", "f" * 32): {"MC203": [("MC203", "a.yaml", 1, 1, 1, 5, "msg", "hint")]},
        ("broken",): {"MC203": []},
        ("ns", "bad", "x"): {"MC203": [("too", "short")]},
    }
    restored = restore_lint_cache(malformed)
    assert len(restored.entries) == 1
    (((key, fingerprint), by_code),) = restored.entries.items()
    assert (str(key), fingerprint) == ("ns/svc", "f" * 32)
    assert [(d.code, str(d.span), d.message, d.hint) for d in by_code["MC203"]] == [
        ("MC203", "a.yaml:1:1", "msg", "hint")
    ]


def test_on_disk_cache_reruns_equal_from_scratch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI path: each run reads the cache the previous run wrote (per-file entries and
    subject findings), after a one-file edit; every run reports what a cold run reports."""
    from compiler import cache
    from compiler.cli.lint import compile_with_cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(cache.ENV_NO_CACHE, raising=False)
    files = _mesh(tmp_path / "mesh", services=30, seed=5)
    cache_dir = tmp_path / "cache"
    rng = random.Random(5)
    first = compile_with_cache(PolicyTree(files=dict(files)), now=NOW, cache_dir=cache_dir)
    assert _rendered(first) == _scratch(files)
    disk = cache.open_cache(cache_dir)
    assert disk is not None
    for step, edit in enumerate((deny_rule, add_call, shared_identity, shift_lines, drop_calls)):
        name = rng.choice(sorted(n for n in files if "/" in n))
        edit(files, name, rng)
        stored = cache.read_stored(disk)
        assert set(stored.entries) == set(stored.blobs) and len(stored.lint) >= 30, step
        again = compile_with_cache(PolicyTree(files=dict(files)), now=NOW, cache_dir=cache_dir)
        assert _rendered(again) == _scratch(files), f"step {step}: {edit.__name__} on {name}"


def test_compiling_imports_only_modules_the_cache_fingerprint_covers(tmp_path: Path) -> None:
    """The on-disk cache is invalidated by edits to the modules `lint_sources` lists; a
    compile (every rule included) must not depend on any other compiler module."""
    import subprocess
    import sys

    from compiler import cache
    from tests.helpers import REPO

    files = _mesh(tmp_path / "mesh", services=12)
    orphan_policy(files, sorted(n for n in files if "/" in n)[2], random.Random(0))
    for name, raw in files.items():
        (tmp_path / "mesh" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "mesh" / name).write_bytes(raw)
    script = (
        "import sys\n"
        "from datetime import UTC, datetime\n"
        "from pathlib import Path\n"
        "from compiler.api import compile_tree, load_tree\n"
        f"c = compile_tree(load_tree(Path({str(tmp_path / 'mesh')!r})), "
        "now=datetime(2026, 11, 25, tzinfo=UTC))\n"
        "assert c.diagnostics\n"
        "print('\\n'.join(sorted(m for m in sys.modules if m.startswith('compiler'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=True
    )
    package = Path(cache.__file__).resolve().parent
    covered = {
        ".".join(("compiler", *p.relative_to(package).with_suffix("").parts)).removesuffix(
            ".__init__"
        )
        for p in cache.lint_sources(package)
    }
    imported = set(result.stdout.split())
    assert "compiler.kinds.access_policy.checks" in imported
    assert imported <= covered, sorted(imported - covered)


def test_plain_rules_still_work_and_a_crashing_subject_rule_is_contained(tmp_path: Path) -> None:
    """A plain `@rule` over the whole model keeps working next to subject rules (it is run
    every time), and a subject rule that fails on one subject reports MC000 once while the
    other subjects' findings stay — with and without a LintCache."""
    from compiler.diagnostics import Severity
    from compiler.lint.registry import Finding, rule, subject_rule

    files = _mesh(tmp_path, services=10)

    def plain(ctx: LintContext) -> list[Finding]:
        """Test rule: one finding per service (plain rule)."""
        return [
            Finding(view.intent.span("ports"), f"plain saw {view.key}")
            for view in ctx.model.services.values()
        ]

    def fragile(ctx: SubjectContext, subject: Subject) -> list[Finding]:
        """Test rule: fails on one subject."""
        if subject.view is None:
            return []
        if subject.key.name.endswith("0003"):
            raise ValueError("boom")
        return [Finding(subject.view.intent.span("ports"), f"fragile saw {subject.key}")]

    try:
        rule("MC991", "test-plain", Severity.INFO)(plain)
        subject_rule("MC992", "test-fragile", Severity.INFO)(fragile)
        lint_cache = LintCache()
        runs = [
            compile_tree(PolicyTree(files=dict(files)), now=NOW, lint_cache=lint_cache)
            for _ in range(2)
        ]
        runs.append(compile_tree(PolicyTree(files=dict(files)), now=NOW))
    finally:
        del REGISTRY["MC991"], REGISTRY["MC992"]
    assert _rendered(runs[0]) == _rendered(runs[1]) == _rendered(runs[2])
    assert lint_cache.reused == 10
    diagnostics = runs[0].diagnostics
    assert len([d for d in diagnostics if d.code == "MC991"]) == 10
    assert len([d for d in diagnostics if d.code == "MC992"]) == 9
    crashes = [d for d in diagnostics if d.code == "MC000"]
    assert [d.message for d in crashes] == ["internal error in rule MC992: ValueError: boom"]


def test_run_rules_without_a_digest_for_every_file_reuses_nothing(tmp_path: Path) -> None:
    """Fingerprints never guess: with a file's content hash missing, nothing is cached."""
    from compiler.lint.engine import run_rules

    files = _mesh(tmp_path, services=10)
    orphan_policy(files, sorted(n for n in files if "/" in n)[1], random.Random(0))
    compilation = compile_tree(PolicyTree(files=dict(files)), now=NOW)
    ctx = LintContext(compilation.model, NOW)
    lint_cache = LintCache()
    partial = {name: "0" * 64 for name in sorted(files)[1:]}
    found = run_rules(ctx, digests=partial, cache=lint_cache)
    assert lint_cache.entries == {}
    assert sorted(map(repr, found)) == sorted(map(repr, run_rules(ctx)))
    assert any(d.code == "MC202" for d in found)


def test_suppressions_hold_when_read_back_from_the_on_disk_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from compiler import cache
    from compiler.cli.lint import compile_with_cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(cache.ENV_NO_CACHE, raising=False)
    files = _mesh(tmp_path / "mesh", services=8)
    files["x/ghost.yaml"] = (
        b"apiVersion: meshc/v1\nkind: AccessPolicy\nmetadata: {name: ghost, namespace: x}\n"
        b"spec:\n  service: ghost  # meshc: ignore[MC202] reason: declared in another repo\n"
        b"  rules:\n  - from: [{namespace: x}]\n"
    )
    cache_dir = tmp_path / "cache"
    runs = []
    for step in range(3):
        shift_lines(files, sorted(n for n in files if "/" in n)[0], random.Random(step))
        runs.append(compile_with_cache(PolicyTree(files=dict(files)), now=NOW, cache_dir=cache_dir))
        assert _rendered(runs[-1]) == _scratch(files)
    ghost = [d for run in runs for d in run.diagnostics if d.code == "MC202"]
    assert len(ghost) == 3
    assert {d.suppressed_reason for d in ghost} == {"declared in another repo"}
