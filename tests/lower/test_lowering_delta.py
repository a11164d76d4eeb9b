"""A lowering patched from the last one (a `ModelChange`) equals a fresh lowering.

When a compile through a `FileCache` re-resolves the model from the last one, the
`LoweringCache` that lowered that model re-lowers only the touched services and the
services whose rules name a touched service whose account or selector moved (by service,
or by an identity it runs as); every other group is the previous lowering's very object.
These tests check which groups are re-lowered, that the result is byte for byte a fresh
lowering's, and that the cache falls back to the whole lowering when the model it lowered
last is not the one the change started from.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from compiler.api import Compilation, FileCache, compile_tree
from compiler.artifacts import to_yaml_stream
from compiler.load.discover import PolicyTree
from compiler.lower import LoweringCache, lower
from compiler.lower.cache import Group
from compiler.lower.istio import dependencies, lower_istio_keyed
from compiler.model.mesh import MeshModel, ServiceKey
from tests.bench.generate import generate_mesh
from tests.helpers import NOW

Files = dict[str, str]


def _mesh(tmp: Path, services: int = 30) -> Files:
    generate_mesh(tmp, services=services, rules_per_service=4, seed=11)
    return {str(p.relative_to(tmp)): p.read_text() for p in sorted(tmp.rglob("*.yaml"))}


def _tree(files: Files) -> PolicyTree:
    return PolicyTree(files={name: text.encode() for name, text in files.items()})


def _key(text: str) -> ServiceKey:
    name = re.search(r"^  name: (\S+)$", text, re.M)
    namespace = re.search(r"^  namespace: (\S+)$", text, re.M)
    assert name and namespace
    return ServiceKey(namespace.group(1), name.group(1))


def _file_of(files: Files, key: ServiceKey) -> str:
    return next(n for n, t in files.items() if n != "mesh.yaml" and _key(t) == key)


def _servers(files: Files) -> list[str]:
    return sorted(n for n, t in files.items() if n != "mesh.yaml" and "  rules:\n" in t)


def _add_rule(files: Files, name: str, source: str) -> None:
    rule = f"  - from: [{{{source}}}]\n    to: {{methods: [GET], paths: ['/delta']}}\n"
    files[name] = files[name].replace("  rules:\n", "  rules:\n" + rule, 1)


def _move(files: Files, key: ServiceKey, lane: str) -> None:
    """Give `key` an explicit selector (or change its lane): its pods are others."""
    name = _file_of(files, key)
    if "  selector:" in files[name]:
        files[name] = re.sub(r"lane: \w+", f"lane: {lane}", files[name], count=1)
    else:
        selector = f"spec:\n  selector: {{app: {key.name}, lane: {lane}}}\n"
        files[name] = files[name].replace("spec:\n", selector, 1)


def _by_service(model: MeshModel, groups: list[Group]) -> dict[ServiceKey, Group]:
    keys = sorted(model.services)
    assert len(groups) == len(keys) + 1
    return dict(zip(keys, groups[1:], strict=True))


def _yaml(groups: list[Group]) -> str:
    return to_yaml_stream(obj for group in groups for _, obj in group)


class Session:
    """One FileCache and LoweringCache, as a watch session or the planner keeps them."""

    def __init__(self, files: Files) -> None:
        self.files = files
        self.file_cache = FileCache()
        self.cache = LoweringCache()
        self.compilation = self.compile()
        self.groups = self.lower()

    def compile(self) -> Compilation:
        return compile_tree(_tree(self.files), now=NOW, cache=self.file_cache)

    def lower(self, compilation: Compilation | None = None) -> list[Group]:
        """Lower (the latest compile by default) and compare with a fresh lowering."""
        compilation = compilation or self.compilation
        groups = lower_istio_keyed(compilation.model, now=NOW, rollout_state={}, cache=self.cache)
        fresh = compile_tree(_tree(self.files), now=NOW)
        scratch = lower_istio_keyed(fresh.model, now=NOW, rollout_state={})
        assert _yaml(groups) == _yaml(scratch), "the cached lowering differs from a fresh one"
        return groups

    def step(self) -> tuple[dict[ServiceKey, Group], dict[ServiceKey, Group]]:
        """Compile and lower the edited files: the groups by service, before and after."""
        before = _by_service(self.compilation.model, self.groups)
        self.compilation = self.compile()
        self.groups = self.lower()
        return before, _by_service(self.compilation.model, self.groups)


def _relowered(before: dict[ServiceKey, Group], after: dict[ServiceKey, Group]) -> set[ServiceKey]:
    assert before.keys() == after.keys()
    return {key for key, group in after.items() if group is not before[key]}


def _readers(model: MeshModel, key: ServiceKey) -> set[ServiceKey]:
    """The services whose rules name `key` or the identity it runs as."""
    identity = (key.namespace, model.services[key].service_account)
    return {
        reader
        for reader, view in model.services.items()
        if key in (found := dependencies(view)).services or identity in found.identities
    }


def test_a_moved_selector_relowers_the_groups_naming_it_by_service_and_identity(
    tmp_path: Path,
) -> None:
    files = _mesh(tmp_path)
    caller = _key(files[_servers(files)[0]])
    by_service, by_identity = _servers(files)[1:3]
    _add_rule(files, by_service, f"service: {caller}")
    _add_rule(files, by_identity, f"identity: {caller.namespace}/{caller.name}-sa")
    session = Session(files)
    assert not session.cache.patched, "the first lowering lowers every service"
    readers = _readers(session.compilation.model, caller)
    assert {_key(files[by_service]), _key(files[by_identity])} <= readers

    _move(files, caller, "blue")
    before, after = session.step()

    assert session.compilation.model.change is not None
    assert session.cache.patched
    assert _relowered(before, after) == readers | {caller}
    relowered = len(readers | {caller})
    assert (session.cache.misses, session.cache.hits) == (relowered, len(after) - relowered)
    for name in (by_service, by_identity):
        network = next(obj for _, obj in after[_key(files[name])] if obj["kind"] == "NetworkPolicy")
        assert '"lane": "blue"' in json.dumps(network), f"{name}: the caller's new pods"


def test_a_policy_edit_leaves_the_readers_of_its_service_alone(tmp_path: Path) -> None:
    """The file is rewritten (its Service intent is a new object) but the Service reads
    the same: the services naming it keep their groups."""
    files = _mesh(tmp_path)
    session = Session(files)
    model = session.compilation.model
    server = next(n for n in _servers(files) if _readers(model, _key(files[n])) - {_key(files[n])})
    key = _key(files[server])
    readers = _readers(model, key) - {key}
    files[server] = files[server].replace("mode: enforce", "mode: shadow", 1)
    before, after = session.step()
    assert session.cache.patched
    assert _relowered(before, after) == {key}, f"{sorted(readers)} read {key}: not re-lowered"
    assert (session.cache.misses, session.cache.hits) == (1, len(after) - 1)


def test_a_reverted_file_gets_its_old_group_back_unless_a_reader_moved(tmp_path: Path) -> None:
    """Through a chain of patched lowerings the cache still knows what changed since an
    older group was computed: a file restored to content seen before reuses that group,
    unless a service its rules name moved in between."""
    files = _mesh(tmp_path)
    server = _servers(files)[0]
    key = _key(files[server])
    original = files[server]
    session = Session(files)
    first = _by_service(session.compilation.model, session.groups)[key]

    files[server] = original.replace("mode: enforce", "mode: shadow", 1)
    session.step()
    files[server] = original
    _, after = session.step()
    assert session.cache.patched and (session.cache.misses, session.cache.hits) == (0, 30)
    assert after[key] is first, "the restored file's group is the one lowered for it first"

    files[server] = original.replace("mode: enforce", "mode: shadow", 1)
    session.step()
    named = next(iter(dependencies(session.compilation.model.services[key]).services))
    _move(files, named, "green")
    session.step()
    files[server] = original
    _, after = session.step()
    assert session.cache.patched and session.cache.misses == 1
    assert after[key] is not first and after[key] != first, "a service it names moved"


def test_lowering_another_model_in_between_lowers_every_service(tmp_path: Path) -> None:
    """The change names the model it started from: when the cache lowered another model
    last (the other side of a plan), nothing is patched."""
    files = _mesh(tmp_path)
    session = Session(files)
    base = session.compilation
    server = _servers(files)[0]
    files[server] = files[server].replace("mode: enforce", "mode: shadow", 1)
    head = session.compile()
    assert head.model.change is not None
    lower_istio_keyed(base.model, now=NOW, rollout_state={}, cache=session.cache)
    assert not session.cache.patched and session.cache.hits == 30
    files[_servers(files)[1]] += "\n"  # a byte more: a new file, the same documents
    session.compilation = session.compile()
    assert session.compilation.model.change is not None
    session.groups = session.lower()  # re-resolved from `head`, which it did not lower last
    assert not session.cache.patched
    assert session.cache.misses == 2, "the services of the two rewritten files"


def test_another_rollout_state_lowers_every_service(tmp_path: Path) -> None:
    files = _mesh(tmp_path)
    session = Session(files)
    server = _servers(files)[0]
    files[server] = files[server].replace("mode: enforce", "mode: shadow", 1)
    compilation = session.compile()
    rollout = next(iter(compilation.model.rollouts))
    state = {f"{rollout.model.metadata.namespace}/{rollout.model.metadata.name}": 1}
    groups = lower_istio_keyed(compilation.model, now=NOW, rollout_state=state, cache=session.cache)
    assert not session.cache.patched
    fresh = lower_istio_keyed(
        compile_tree(_tree(files), now=NOW).model, now=NOW, rollout_state=state
    )
    assert _yaml(groups) == _yaml(fresh)


def test_a_random_walk_of_local_edits_lowers_and_assembles_like_from_scratch(
    tmp_path: Path,
) -> None:
    """Selector moves of named services, new rules by service and identity, mode
    toggles and reverts, each compiled through one FileCache and lowered (and assembled
    by `lower`) through one LoweringCache: every step is patched and equals a fresh one."""
    rng = random.Random(5)
    files = _mesh(tmp_path)
    session = Session(files)
    assembled = LoweringCache()
    lower(session.compilation, cache=assembled)
    originals = dict(files)
    keys = sorted(_key(files[n]) for n in files if n != "mesh.yaml")
    for step in range(30):
        kind = rng.randrange(5)
        server = rng.choice(_servers(files))
        if kind == 0:
            _move(files, rng.choice(keys), rng.choice(["blue", "green", "red"]))
        elif kind == 1:
            _add_rule(files, server, f"service: {rng.choice(keys)}")
        elif kind == 2:
            named = rng.choice(keys)
            _add_rule(files, server, f"identity: {named.namespace}/{named.name}-sa")
        elif kind == 3:
            text = files[server]
            swapped = text.replace("mode: enforce", "mode: shadow")
            files[server] = (
                swapped if swapped != text else text.replace("mode: shadow", "mode: enforce")
            )
        else:
            files[server] = originals[server]
        compilation = session.compile()
        groups = lower_istio_keyed(
            compilation.model, now=NOW, rollout_state={}, cache=session.cache
        )
        assert session.cache.patched, f"step {step}: a one-file local edit is patched"
        fresh = compile_tree(_tree(files), now=NOW)
        scratch = lower_istio_keyed(fresh.model, now=NOW, rollout_state={})
        assert _yaml(groups) == _yaml(scratch), f"step {step}: the lowering differs"
        artifacts = lower(compilation, cache=assembled)
        assert artifacts.objects == lower(fresh).objects, f"step {step}: assembled objects differ"
        assert assembled.patched, f"step {step}: assembled from the last assembled mapping"
