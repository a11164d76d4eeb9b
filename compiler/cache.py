"""The on-disk lint cache: per-file parse results kept between CLI runs, like ruff's cache.

`compile_tree` stays pure: the CLI asks this module for a `FileCache` pre-populated from
disk, passes it in (inside a `Session`), and afterwards asks this module to store what the
run built. Only the per-file stage (parse, classify, validate: a function of one file's
name and bytes) is cached, keyed by content: the model and every rule run each time, so
the cache cannot change a finding.

Layout: `<root>/.meshc_cache/` (a dot-directory, so discovery skips it) holding a
`.gitignore` of `*` and one file `lint-v<schema>.bin`. That file is

    MAGIC | HMAC-SHA256(key, payload) | payload (pickle of plain data only)

* The payload holds plain data (str, int, bytes, tuples, lists, dicts) and is read with
  an unpickler that refuses every global, so a tampered file cannot run code. Each file's
  entry is a separately pickled blob inside it (read with the same unpickler), so a run
  that changed one file re-pickles one entry.
* The HMAC key is a per-user secret outside the policy tree
  (`$XDG_CACHE_HOME/meshc/cache.key`, mode 0600), so a cache directory committed to the
  repository (a pull request can add one) is never trusted: its entries fail the check and
  the cache is rebuilt. Only a file this user's meshc wrote is read.
* Entries are keyed by the file's path and SHA-256; the payload records the meshc version,
  the cache schema and a fingerprint of the compiler's source files, and anything else
  is ignored and rebuilt. Corrupt or foreign files are ignored, never a crash.
* Writes go to a temporary file in the same directory and are renamed into place, so
  concurrent runs see either the old or the new cache. Each write keeps only the files of
  the current tree (bounded; deleted files are pruned).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import os
import pickle
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.api import FileCache, FileResult, content_key
from compiler.diagnostics import Diagnostic, Severity, Span
from compiler.gcpause import paused_gc
from compiler.kinds import KINDS
from compiler.lint.suppress import Suppression
from compiler.load.documents import Document
from compiler.load.yamlnodes import FileSource, LazyPositions
from compiler.validate import Intent

CACHE_DIR_NAME = ".meshc_cache"
SCHEMA_VERSION = 6
MAGIC = b"MESHC-LINT-CACHE\n"
_DIGEST = hashlib.sha256().digest_size
ENV_NO_CACHE = "MESHC_NO_CACHE"

PlainDiagnostic = tuple[str, tuple[int, int, int, int], str, str, int]
PlainDocument = tuple[int, str, Any, bool]
PlainSuppression = tuple[int, int, tuple[str, ...], str | None, int]
PlainEntry = tuple[
    str, list[PlainDocument], list[PlainDiagnostic], list[str], list[PlainSuppression]
]
"""(sha256, documents as (index, kind, data, valid), problems, skipped, suppressions as
(line, col, codes, reason, applies_to)); lines and positions come from the file's bytes."""


@dataclass(frozen=True, slots=True)
class Stored:
    """What the cache file held: per-file entries.

    `blobs` are the entries as stored (each pickled on its own), so a run that changed one
    file re-pickles one entry, not the whole tree."""

    entries: dict[str, PlainEntry]
    blobs: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DiskCache:
    """Where the cache lives and the key that proves its files are ours."""

    directory: Path
    key: bytes

    @property
    def path(self) -> Path:
        return self.directory / f"lint-v{SCHEMA_VERSION}.bin"


def cache_disabled(no_cache_flag: bool) -> bool:
    """`--no-cache`, or `MESHC_NO_CACHE` set to anything but empty/0/false."""
    value = os.environ.get(ENV_NO_CACHE, "").strip().lower()
    return no_cache_flag or value not in ("", "0", "false", "no")


def open_cache(directory: Path) -> DiskCache | None:
    """The cache in `directory` (created if needed), or None when it cannot be used safely."""
    key = _user_key()
    if key is None or not _own_directory(directory):
        return None
    return DiskCache(directory, key)


def read_entries(cache: DiskCache) -> dict[str, PlainEntry]:
    """Every entry the cache file holds: {} when it is missing, corrupt, foreign or forged."""
    return read_stored(cache).entries


def read_stored(cache: DiskCache) -> Stored:
    """Everything the cache file holds (empty when it is missing, corrupt, foreign or forged)."""
    with paused_gc():  # unpickling ~100,000 containers would trigger many useless collections
        data = _read_payload(cache)
        blobs = data.get("blobs")
        if not isinstance(blobs, dict):
            return Stored({})
        entries: dict[str, PlainEntry] = {}
        kept: dict[str, bytes] = {}
        for name, blob in blobs.items():
            entry = _unpickle_plain(blob)
            if isinstance(name, str) and isinstance(entry, tuple) and entry:
                entries[name] = entry  # its fields are checked again on restore
                kept[name] = blob
        return Stored(entries, kept)


def _unpickle_plain(blob: Any) -> Any:
    try:
        return _PlainUnpickler(io.BytesIO(blob)).load()
    except Exception:  # corrupt or foreign: ignored and rebuilt
        return None


def restore_file_cache(entries: dict[str, PlainEntry], files: dict[str, bytes]) -> FileCache:
    """A FileCache holding the entries whose file is still present and unchanged."""
    file_cache = FileCache()
    for name, raw in files.items():
        entry = entries.get(name)
        if entry is None:
            continue
        digest = content_key(raw)
        if entry[0] != digest:
            continue
        result = _restore(name, raw, entry)
        if result is not None:
            file_cache.entries[(name, digest)] = result
    return file_cache


def save_file_cache(
    cache: DiskCache,
    files: dict[str, bytes],
    file_cache: FileCache,
    *,
    previous: dict[str, PlainEntry] | None = None,
    stored: Stored | None = None,
) -> bool:
    """Store the entries of the present files; skipped when nothing changed. True if
    written.

    `stored` is what `read_stored` returned before the run (`previous`: its entries, the
    older form of this argument); the cache file is read again when neither is given.
    """
    current = {name: content_key(raw) for name, raw in files.items()}
    if stored is None:
        stored = Stored(previous) if previous is not None else read_stored(cache)
    if {name: entry[0] for name, entry in stored.entries.items()} == current:
        return False
    blobs: dict[str, bytes] = {}
    for name, digest in current.items():
        before = stored.entries.get(name)
        if before is not None and before[0] == digest and name in stored.blobs:
            blobs[name] = stored.blobs[name]
            continue
        result = file_cache.entries.get((name, digest))
        entry = _plain(digest, result) if result is not None else None
        if entry is None and before is not None and before[0] == digest:
            entry = before
        if entry is not None:
            blobs[name] = pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL)
    payload = pickle.dumps(
        {"meta": _meta(), "blobs": blobs},
        protocol=pickle.HIGHEST_PROTOCOL,
    )
    _write_atomic(cache, payload)
    return True


def _read_payload(cache: DiskCache) -> dict[str, Any]:
    try:
        blob = cache.path.read_bytes()
    except OSError:
        return {}
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + _DIGEST:
        return {}
    mac = blob[len(MAGIC) : len(MAGIC) + _DIGEST]
    payload = blob[len(MAGIC) + _DIGEST :]
    if not hmac.compare_digest(mac, hmac.new(cache.key, payload, "sha256").digest()):
        return {}
    try:
        data = _PlainUnpickler(io.BytesIO(payload)).load()
    except Exception:  # corrupt or foreign: ignored and rebuilt
        return {}
    if not isinstance(data, dict) or data.get("meta") != _meta():
        return {}
    return data


class _PlainUnpickler(pickle.Unpickler):
    """Refuses every class and function: the payload is plain data or it is not ours."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"cache: refusing {module}.{name}")


def _restore(name: str, raw: bytes, entry: PlainEntry) -> FileResult | None:
    """Rebuild a FileResult; validation re-runs (cheap) so intents are real models.

    Positions are taken from the file's bytes on first lookup (`LazyPositions`): a clean
    tree looks up no position at all, so a cached run skips the walk entirely."""
    try:
        _, documents, problems, skipped, suppressions = entry
        source = FileSource(name, raw)
        docs: list[Document] = []
        intents: list[Intent[Any]] = []
        for index, kind, data, valid in documents:
            doc = Document(name, index, kind, data, LazyPositions(source, index))
            docs.append(doc)
            if valid:
                intents.append(Intent(doc, KINDS[kind].model_validate(data)))
        diagnostics = [
            Diagnostic(code, Span.from_zero_based(name, *span), message, hint, Severity(severity))
            for code, span, message, hint, severity in problems
        ]
        found = [
            Suppression(line, col, frozenset(codes), reason, applies_to)
            for line, col, codes, reason, applies_to in suppressions
        ]
        return FileResult(name, source, docs, intents, diagnostics, list(skipped), found)
    except Exception:  # an entry that does not fit this version of meshc is rebuilt
        return None


# --- writing ------------------------------------------------------------------------------


def _plain(digest: str, result: FileResult) -> PlainEntry:
    valid = {id(intent.doc) for intent in result.intents}
    documents = [(d.index, d.kind, d.data, id(d) in valid) for d in result.documents]
    problems = [
        (
            d.code,
            (d.span.line - 1, d.span.col - 1, d.span.end_line - 1, d.span.end_col - 1),
            d.message,
            d.hint,
            int(d.severity),
        )
        for d in result.problems
    ]
    suppressions = [
        (found.line, found.col, tuple(sorted(found.codes)), found.reason, found.applies_to)
        for found in result.suppressions()
    ]
    return (digest, documents, problems, list(result.skipped), suppressions)


def _write_atomic(cache: DiskCache, payload: bytes) -> None:
    mac = hmac.new(cache.key, payload, "sha256").digest()
    try:
        handle, temporary = tempfile.mkstemp(prefix=".lint-", suffix=".tmp", dir=cache.directory)
    except OSError:
        return
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(MAGIC + mac + payload)
        os.replace(temporary, cache.path)
    except OSError:
        _remove(Path(temporary))
        return
    for stale in cache.directory.glob("lint-v*.bin"):
        if stale.name != cache.path.name:
            _remove(stale)


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


# --- trust --------------------------------------------------------------------------------


def _own_directory(directory: Path) -> bool:
    """Create the cache directory (0700, with a .gitignore); refuse one we do not own."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = directory.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != _uid() or info.st_mode & 0o022:
            return False
        ignore = directory / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# written by meshc: the lint cache is never committed\n*\n")
    except OSError:
        return False
    return True


def _uid() -> int:
    """This user's id; -1 where the platform has none (then no file passes the check)."""
    getuid = getattr(os, "getuid", None)
    return int(getuid()) if getuid is not None else -1


def _user_key() -> bytes | None:
    """This user's cache key (created on first use), outside any policy tree."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(base) / "meshc" / "cache.key"
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    except OSError:
        return None
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(handle, "wb") as out:
            out.write(os.urandom(32))
    except FileExistsError:
        pass  # a concurrent run created it first
    except OSError:
        return None
    try:
        return _read_key(path)
    except OSError:
        return None


def _read_key(path: Path) -> bytes | None:
    info = path.lstat()
    if not stat.S_ISREG(info.st_mode) or info.st_uid != _uid() or info.st_mode & 0o077:
        return None
    key = path.read_bytes()
    return key if len(key) >= 16 else None


# --- what invalidates the cache -------------------------------------------------------------


def _meta() -> tuple[str, int, str]:
    return (_meshc_version(), SCHEMA_VERSION, _code_fingerprint())


_FINGERPRINT: list[str] = []


LINT_PACKAGES = ("kinds", "lint", "load", "model")
"""The subpackages whose code can change what the cache holds (parse results, findings)."""
LINT_MODULES = (
    "__init__.py",
    "api.py",
    "cache.py",
    "config.py",
    "diagnostics.py",
    "gcpause.py",
    "treefiles.py",
    "validate.py",
)
"""The top-level modules that can. The rest (lower, plan, report, cli...) only reads
compilations, so editing it keeps the cache; tests/lint checks that compiling a tree
imports nothing outside these."""


def _code_fingerprint() -> str:
    """Sizes and mtimes of the compiler sources that lint results depend on: an edited
    meshc rebuilds the cache."""
    if not _FINGERPRINT:
        package = Path(__file__).resolve().parent
        digest = hashlib.sha256()
        for path in sorted(lint_sources(package)):
            try:
                info = path.stat()
            except OSError:
                continue
            digest.update(
                f"{path.relative_to(package)}:{info.st_size}:{info.st_mtime_ns}\n".encode()
            )
        _FINGERPRINT.append(digest.hexdigest())
    return _FINGERPRINT[0]


def lint_sources(package: Path) -> Iterator[Path]:
    """The source files `_code_fingerprint` covers."""
    for module in LINT_MODULES:
        yield package / module
    for sub in LINT_PACKAGES:
        for directory, subdirs, names in os.walk(package / sub):
            subdirs[:] = [d for d in subdirs if d != "__pycache__"]
            for name in names:
                if name.endswith(".py"):
                    yield Path(directory) / name


def _meshc_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("meshc")
    except PackageNotFoundError:
        return "unknown"
