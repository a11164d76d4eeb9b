"""A model re-resolved from the last one (`compiler.model.delta`) equals one resolved from
scratch, and so do the lint subjects, fingerprints and findings patched from it.

The generated mesh goes through random one-file edits (tests/lint/test_incremental.py's);
after each, the compile through long-lived caches is compared with a fresh compile on
everything later phases read of the model. Most edits are local (a policy, a call, a
line shift), so the patched path runs; the others (a renamed service, a shared identity,
a deleted file, mesh settings) must fall back to resolving from scratch.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from compiler.api import FileCache, compile_tree
from compiler.lint.subjects import LintCache, fingerprints, subjects_of
from compiler.load.discover import PolicyTree
from compiler.model.mesh import MeshModel
from tests.helpers import NOW
from tests.lint.test_incremental import EDITS, _mesh, _rendered, add_call, rename_service


def foreign_document(files: dict[str, bytes], name: str, rng: random.Random) -> None:
    """A Kubernetes document beside the intents: skipped, with a note."""
    files[name] += b"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\n"


def unknown_field(files: dict[str, bytes], name: str, rng: random.Random) -> None:
    """An invalid document: a located problem, and the file's other intents stay."""
    files[name] += (
        b"---\napiVersion: meshc/v1\nkind: Rollout\nmetadata: {name: r}\nspec: {bogus: 1}\n"
    )


LOCAL_EDITS = (*EDITS, foreign_document, unknown_field)


def _refs(intents: list[Any]) -> list[str]:
    return [intent.ref for intent in intents]


def _shape(model: MeshModel) -> dict[str, Any]:
    """Everything the lint, lowering and meaning phases read of a model, as plain values."""
    return {
        "mesh": model.mesh.ref if model.mesh else None,
        "services": [
            (
                str(key),
                view.intent.ref,
                view.selector,
                view.service_account,
                view.spiffe_id,
                _refs(view.policies),
                _refs(view.rollouts),
                _refs(view.resilience),
            )
            for key, view in model.services.items()
        ],
        "duplicates": _refs(model.duplicate_services),
        "policies": _refs(model.policies),
        "rollouts": _refs(model.rollouts),
        "resilience": _refs(model.resilience),
        "identities": {spiffe: [str(k) for k in keys] for spiffe, keys in model.identities.items()},
    }


def _subjects(model: MeshModel) -> dict[str, list[str]]:
    return {str(key): _refs(list(subject.intents())) for key, subject in subjects_of(model).items()}


def _tree(files: dict[str, bytes], *, copied: bool) -> PolicyTree:
    """The files as a tree; `copied`: every file a new bytes object, as a tree read from
    disk again (the file collections are then rebuilt, and only the model is patched)."""
    return PolicyTree(
        files={name: bytes(bytearray(raw)) if copied else raw for name, raw in files.items()}
    )


@pytest.mark.parametrize(("seed", "copied"), [(11, False), (12, False), (13, False), (14, True)])
def test_patched_model_and_lint_equal_from_scratch(tmp_path: Path, seed: int, copied: bool) -> None:
    rng = random.Random(seed)
    files = _mesh(tmp_path, services=40, seed=seed)
    file_cache, lint_cache = FileCache(), LintCache()
    compile_tree(PolicyTree(files=dict(files)), now=NOW, cache=file_cache, lint_cache=lint_cache)
    patched = 0
    for step in range(18):
        name = rng.choice(sorted(n for n in files if "/" in n))
        rng.choice(LOCAL_EDITS)(files, name, rng)
        incremental = compile_tree(
            _tree(files, copied=copied), now=NOW, cache=file_cache, lint_cache=lint_cache
        )
        fresh = compile_tree(PolicyTree(files=dict(files)), now=NOW)
        where = f"seed {seed}, step {step}: {name}"
        assert _shape(incremental.model) == _shape(fresh.model), where
        assert _subjects(incremental.model) == _subjects(fresh.model), where
        digests = {f: file_cache.digest(raw) for f, raw in files.items()}
        state = incremental.model.lint_index["fingerprints"]
        assert state.prints == fingerprints(fresh.model, digests), where
        assert _rendered(incremental) == _rendered(fresh), where
        assert incremental.notes == fresh.notes, where
        assert list(incremental.files) == list(fresh.files), where
        patched += incremental.model.change is not None
    assert patched >= 6  # most random edits are local: the patched path really ran


def test_a_local_edit_patches_and_shares_the_untouched_views(tmp_path: Path) -> None:
    files = _mesh(tmp_path, services=30)
    cache = FileCache()
    first = compile_tree(PolicyTree(files=dict(files)), now=NOW, cache=cache)
    name = sorted(n for n in files if "/" in n)[7]
    add_call(files, name, random.Random(3))
    second = compile_tree(PolicyTree(files=dict(files)), now=NOW, cache=cache)
    change = second.model.change
    assert change is not None and change.previous() is first.model
    edited = next(k for k in second.model.services if f"{k.namespace}/{k.name}.yaml" == name)
    assert edited in change.touched
    for key, view in second.model.services.items():
        shared = view is first.model.services[key]
        assert shared == (key not in change.touched), key
    assert list(second.model.services) == list(first.model.services)


def test_a_renamed_service_resolves_from_scratch(tmp_path: Path) -> None:
    files = _mesh(tmp_path, services=20)
    cache = FileCache()
    compile_tree(PolicyTree(files=dict(files)), now=NOW, cache=cache)
    rename_service(files, sorted(n for n in files if "/" in n)[3], random.Random(0))
    again = compile_tree(PolicyTree(files=dict(files)), now=NOW, cache=cache)
    assert again.model.change is None
    assert any(key.name.endswith("-renamed") for key in again.model.services)


def test_a_new_rollout_state_resolves_from_scratch(tmp_path: Path) -> None:
    files = _mesh(tmp_path, services=20)
    cache = FileCache()
    compile_tree(PolicyTree(files=dict(files)), now=NOW, cache=cache)
    again = compile_tree(
        PolicyTree(files=dict(files)), now=NOW, cache=cache, rollout_state={"x/y": 1}
    )
    assert again.model.change is None
