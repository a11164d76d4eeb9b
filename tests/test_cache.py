"""The on-disk lint cache: invisible in output, safe to share, never trusted blindly."""

from __future__ import annotations

import os
import pickle
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from compiler import cache
from compiler.api import FileCache, Session, compile_tree, load_tree
from compiler.cli import cli
from tests.helpers import BIN, NOW, write_tree

FILES = {
    "mesh.yaml": """\
    apiVersion: meshc/v1
    kind: Mesh
    metadata: {name: m}
    spec: {}
    """,
    "web/front.yaml": """\
    apiVersion: meshc/v1
    kind: Service
    metadata: {name: front, namespace: web}
    spec:
      ports: [{name: http, port: 80, protocol: http}]
      calls: [bakend]
      calls: [backend]
    """,
    "web/back.yaml": """\
    apiVersion: meshc/v1
    kind: Service
    metadata: {name: backend, namespace: web}
    spec:
      ports: [{name: http, port: 80, protocol: http}]
      colour: blue
    """,
    "web/broken.yaml": "apiVersion: meshc/v1\nkind: [Service\n",
    "ci/workflow.yaml": "name: ci\non: push\n",
}


@pytest.fixture(autouse=True)
def _user_cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own cache key directory (never the real ~/.cache)."""
    home = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    monkeypatch.delenv(cache.ENV_NO_CACHE, raising=False)
    return home


def lint(root: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["lint", str(root), "--now", NOW.isoformat(), *args])


def outputs(result: Result) -> tuple[int, str, str]:
    return result.exit_code, result.stdout, result.stderr


def test_findings_are_identical_with_and_without_the_cache(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "repo", FILES)
    for fmt in ("text", "json"):
        uncached = lint(root, "--format", fmt, "--no-cache")
        filling = lint(root, "--format", fmt)
        reading = lint(root, "--format", fmt)
        assert outputs(uncached) == outputs(filling) == outputs(reading)
    text = lint(root).stdout
    # the findings cover the loader (duplicate key, syntax), validation and a rule
    assert "duplicate key 'calls'" in text
    assert "MC101" in text and "MC105" in text
    assert "colour" in text
    assert "note: ci/workflow.yaml" in lint(root).stderr
    assert (root / ".meshc_cache" / f"lint-v{cache.SCHEMA_VERSION}.bin").is_file()


def test_rule_findings_from_cached_documents_keep_their_exact_spans(tmp_path: Path) -> None:
    files = dict(FILES)
    files["web/front.yaml"] = FILES["web/front.yaml"].replace("      calls: [backend]\n", "")
    root = write_tree(tmp_path / "repo", files)
    tree = load_tree(root)
    fresh = compile_tree(tree, now=NOW)
    disk = cache.open_cache(root / ".meshc_cache")
    assert disk is not None
    cache.save_file_cache(disk, tree.files, FileCache())  # nothing built yet: stores nothing
    warm = FileCache()
    compile_tree(tree, now=NOW, session=Session(files=warm))
    assert cache.save_file_cache(disk, tree.files, warm)
    restored = cache.restore_file_cache(cache.read_entries(disk), tree.files)
    assert len(restored.entries) == len(tree.files)
    again = compile_tree(tree, now=NOW, session=Session(files=restored))
    assert again.diagnostics == fresh.diagnostics
    unknown = [d for d in again.diagnostics if d.code == "MC201"]
    assert unknown and (unknown[0].span.file, unknown[0].span.line, unknown[0].span.col) == (
        "web/front.yaml",
        6,
        11,
    )
    assert "'bakend'" in unknown[0].message


def test_cache_dir_is_ignored_by_git_and_by_discovery(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "repo", FILES)
    lint(root)
    directory = root / ".meshc_cache"
    assert (directory / ".gitignore").read_text().splitlines()[-1] == "*"
    assert oct(directory.stat().st_mode & 0o777) == oct(0o700)
    assert ".meshc_cache" not in " ".join(load_tree(root).files)


def test_a_changed_file_is_rebuilt_and_a_deleted_one_pruned(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "repo", FILES)
    lint(root)
    (root / "web" / "back.yaml").write_text(
        FILES["web/back.yaml"].replace("      colour: blue\n", "")
    )
    (root / "web" / "broken.yaml").unlink()
    result = lint(root)
    assert "colour" not in result.stdout
    assert "broken.yaml" not in result.stdout
    disk = cache.open_cache(root / ".meshc_cache")
    assert disk is not None
    stored = _cached_files(disk)
    assert "web/broken.yaml" not in stored
    assert set(stored) == set(load_tree(root).files)


@pytest.mark.parametrize(
    "damage",
    [
        b"",
        b"garbage",
        cache.MAGIC + b"\x00" * 10,
        cache.MAGIC + b"\x00" * 32 + pickle.dumps({"meta": None}),
    ],
    ids=["empty", "garbage", "truncated", "bad-mac"],
)
def test_corrupt_cache_files_are_ignored_and_rebuilt(tmp_path: Path, damage: bytes) -> None:
    root = write_tree(tmp_path / "repo", FILES)
    expected = outputs(lint(root, "--no-cache"))
    lint(root)
    path = root / ".meshc_cache" / f"lint-v{cache.SCHEMA_VERSION}.bin"
    path.write_bytes(damage)
    assert outputs(lint(root)) == expected
    assert path.read_bytes().startswith(cache.MAGIC) and len(path.read_bytes()) > 100


def test_a_cache_written_with_another_key_is_not_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pull request can commit a .meshc_cache claiming a broken file is clean."""
    root = write_tree(tmp_path / "repo", FILES)
    clean = dict(FILES)
    clean["web/back.yaml"] = FILES["web/back.yaml"].replace("      colour: blue\n", "")
    forged_root = write_tree(tmp_path / "forger", clean)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "attacker"))
    lint(forged_root)
    forged = (forged_root / ".meshc_cache" / f"lint-v{cache.SCHEMA_VERSION}.bin").read_bytes()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "victim"))
    (root / ".meshc_cache").mkdir(mode=0o700)
    (root / ".meshc_cache" / f"lint-v{cache.SCHEMA_VERSION}.bin").write_bytes(forged)
    assert "unknown field 'colour'" in lint(root).stdout


def test_a_cache_holding_code_is_refused_even_with_a_valid_key(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "repo", FILES)
    disk = cache.open_cache(root / ".meshc_cache")
    assert disk is not None
    payload = pickle.dumps({"meta": cache._meta(), "entries": {"x": os.getcwd}})
    import hmac

    mac = hmac.new(disk.key, payload, "sha256").digest()
    disk.path.write_bytes(cache.MAGIC + mac + payload)
    assert _cached_files(disk) == {}


def test_entries_from_another_meshc_version_are_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_tree(tmp_path / "repo", FILES)
    lint(root)
    disk = cache.open_cache(root / ".meshc_cache")
    assert disk is not None and _cached_files(disk)
    monkeypatch.setattr(cache, "_meshc_version", lambda: "999.0")
    assert _cached_files(disk) == {}
    assert cache.restore_file_cache(cache.read_entries(disk), load_tree(root).files).entries == {}


def test_cache_can_be_switched_off_or_moved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_tree(tmp_path / "repo", FILES)
    lint(root, "--no-cache")
    monkeypatch.setenv(cache.ENV_NO_CACHE, "1")
    lint(root)
    assert not (root / ".meshc_cache").exists()
    monkeypatch.delenv(cache.ENV_NO_CACHE)
    elsewhere = tmp_path / "elsewhere"
    lint(root, "--cache-dir", str(elsewhere))
    assert not (root / ".meshc_cache").exists()
    assert (elsewhere / f"lint-v{cache.SCHEMA_VERSION}.bin").is_file()


def test_a_directory_others_can_write_is_not_used(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "repo", FILES)
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    assert cache.open_cache(shared) is None
    expected = outputs(lint(root, "--no-cache"))
    assert outputs(lint(root, "--cache-dir", str(shared))) == expected
    assert list(shared.iterdir()) == []


def test_concurrent_cli_runs_share_the_cache_safely(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "repo", FILES)
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    args = [str(BIN / "meshc"), "lint", str(root), "--now", NOW.isoformat()]
    runs = [
        subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    results = [(p.wait(timeout=120), p.communicate()) for p in runs]
    assert len({(code, out) for code, out in results}) == 1
    assert results[0][0] == 1
    cache._FINGERPRINT.clear()  # the source tree may have been edited since this process started
    disk = cache.open_cache(root / ".meshc_cache")
    assert disk is not None
    assert set(_cached_files(disk)) == set(load_tree(root).files)
    assert not [p for p in (root / ".meshc_cache").iterdir() if p.suffix == ".tmp"]


def _cached_files(disk: cache.DiskCache) -> dict[str, str]:
    """File -> content hash of every entry the cache holds (empty when unreadable)."""
    return {name: entry[0] for name, entry in cache.read_entries(disk).items()}
