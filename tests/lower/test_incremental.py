"""Incremental lowering and planning equal the from-scratch results, byte for byte.

A generated mesh goes through a random walk of one-file edits, each a real semantic
change chosen to hit a different input of the per-service memo: a caller's identity or
selector (read by the AuthorizationPolicies and NetworkPolicies of the services it
calls), a new rule naming a service or an identity, a deleted and restored service file,
a policy's mode, mesh settings and rollout state. After every edit the lowering through a
long-lived `LoweringCache`, the meaning through a long-lived `MeaningCache` and the plan
through a long-lived `Planner` must equal a fresh lowering, meaning and plan exactly.
The local edits (a selector, a rule, a mode) re-resolve the model from the previous one,
so their lowering patches the previous lowering (`LoweringCache.patched`).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from compiler.api import FileCache, compile_tree
from compiler.artifacts import to_yaml_stream
from compiler.load.discover import PolicyTree
from compiler.lower import LoweringCache, lower
from compiler.lower.istio import lower_istio_keyed
from compiler.plan.engine import Planner, build_plan
from compiler.plan.meaning import MeaningCache, summarise
from compiler.plan.report import plan_document
from compiler.plan.source import Revision
from tests.bench.generate import generate_mesh
from tests.helpers import NOW

STEPS = 16
Files = dict[str, str]
Edit = Callable[[Files, dict[str, int], random.Random], str]


def _mesh(tmp: Path, services: int) -> Files:
    stats = generate_mesh(tmp, services=services, rules_per_service=4, seed=7)
    files = {str(p.relative_to(tmp)): p.read_text() for p in sorted(tmp.rglob("*.yaml"))}
    assert len(files) == stats.files
    return files


def _service_files(files: Files) -> list[str]:
    return sorted(name for name in files if name != "mesh.yaml")


def _pick(files: Files, rng: random.Random, needle: str = "kind: Service") -> str:
    choices = [name for name in _service_files(files) if needle in files[name]]
    return rng.choice(choices)


def _name_of(text: str) -> tuple[str, str]:
    name = re.search(r"^  name: (\S+)$", text, re.M)
    namespace = re.search(r"^  namespace: (\S+)$", text, re.M)
    assert name and namespace
    return namespace.group(1), name.group(1)


def change_identity(files: Files, state: dict[str, int], rng: random.Random) -> str:
    name = _pick(files, rng)
    files[name] = re.sub(r"identity: (\S+)", rf"identity: \g<1>-{rng.randint(0, 9)}", files[name])
    return f"identity of {name}"


def share_identity(files: Files, state: dict[str, int], rng: random.Random) -> str:
    """Run a service as another one of its namespace (rules naming either now match both)."""
    name = _pick(files, rng)
    namespace, _ = _name_of(files[name])
    peers = [n for n in _service_files(files) if n != name and n.startswith(f"{namespace}/")]
    if not peers:
        return "no peer to share an identity with"
    account = re.search(r"identity: (\S+)", files[rng.choice(peers)])
    assert account
    files[name] = re.sub(r"identity: \S+", f"identity: {account.group(1)}", files[name])
    return f"{name} shares an identity"


def change_selector(files: Files, state: dict[str, int], rng: random.Random) -> str:
    name = _pick(files, rng)
    _, service = _name_of(files[name])
    lane = rng.choice(["blue", "green"])
    if "  selector:" in files[name]:
        files[name] = re.sub(r"lane: \w+", f"lane: {lane}", files[name])
    else:
        files[name] = files[name].replace(
            "spec:\n", f"spec:\n  selector: {{app: {service}, lane: {lane}}}\n", 1
        )
    return f"selector of {name}"


def change_named_selector(files: Files, state: dict[str, int], rng: random.Random) -> str:
    """Move a service that other services' rules name (by service or by identity): their
    groups read its selector, so a patched lowering must re-lower them too."""
    named = sorted(set(re.findall(r"\{(?:service|identity): (\S+?)\}", "".join(files.values()))))
    if not named:
        return "no named service"
    namespace, name = rng.choice(named).split("/")
    wanted = f"  name: {name.removesuffix('-sa')}\n  namespace: {namespace}\n"
    owner = next((n for n in _service_files(files) if wanted in files[n]), None)
    if owner is None:
        return "the named service is not declared"
    lane = rng.choice(["blue", "green", "red"])
    if "  selector:" in files[owner]:
        files[owner] = re.sub(r"lane: \w+", f"lane: {lane}", files[owner], count=1)
    else:
        files[owner] = files[owner].replace(
            "spec:\n", f"spec:\n  selector: {{app: {name}, lane: {lane}}}\n", 1
        )
    return f"selector of the named {namespace}/{name}"


def add_service_rule(files: Files, state: dict[str, int], rng: random.Random) -> str:
    name = _pick(files, rng, "  rules:\n")
    caller = _name_of(files[_pick(files, rng)])
    rule = f"  - from: [{{service: {caller[0]}/{caller[1]}}}]\n    to: {{methods: [PUT]}}\n"
    files[name] = files[name].replace("  rules:\n", "  rules:\n" + rule, 1)
    return f"rule naming {caller} in {name}"


def add_identity_rule(files: Files, state: dict[str, int], rng: random.Random) -> str:
    name = _pick(files, rng, "  rules:\n")
    namespace, service = _name_of(files[_pick(files, rng)])
    account = rng.choice([f"{service}-sa", service])
    rule = f"  - from: [{{identity: {namespace}/{account}}}]\n    to: {{methods: [GET]}}\n"
    files[name] = files[name].replace("  rules:\n", "  rules:\n" + rule, 1)
    return f"identity rule in {name}"


_removed: dict[str, str] = {}


def delete_file(files: Files, state: dict[str, int], rng: random.Random) -> str:
    """Delete a service file (its callers' references dangle: the tree stops compiling,
    so the walk restores it at the next step)."""
    name = _pick(files, rng)
    _removed[name] = files.pop(name)
    return f"deleted {name}"


def toggle_mode(files: Files, state: dict[str, int], rng: random.Random) -> str:
    name = _pick(files, rng, "  mode: ")
    text = files[name]
    swapped = text.replace("mode: enforce", "mode: shadow")
    files[name] = swapped if swapped != text else text.replace("mode: shadow", "mode: enforce")
    return f"mode of {name}"


def change_mesh(files: Files, state: dict[str, int], rng: random.Random) -> str:
    text = files["mesh.yaml"]
    if rng.random() < 0.5:
        files["mesh.yaml"] = re.sub(
            r"trustDomain: \S+", f"trustDomain: t{rng.randint(0, 3)}.local", text
        )
    else:
        enabled = "enabled: true" in text
        files["mesh.yaml"] = text.replace(
            f"enabled: {str(enabled).lower()}", f"enabled: {str(not enabled).lower()}"
        )
    return "mesh settings"


def change_rollout_state(files: Files, state: dict[str, int], rng: random.Random) -> str:
    stepped = [name for name in _service_files(files) if "canary: v2" in files[name]]
    if not stepped:
        return "no stepped rollout"
    namespace, service = _name_of(files[rng.choice(stepped)].split("kind: Rollout", 1)[1])
    state[f"{namespace}/{service}"] = rng.randint(0, 2)
    return f"rollout state of {namespace}/{service}"


EDITS: tuple[Edit, ...] = (
    change_identity,
    share_identity,
    change_selector,
    change_named_selector,
    add_service_rule,
    add_identity_rule,
    delete_file,
    toggle_mode,
    change_mesh,
    change_rollout_state,
)


def _tree(files: Files) -> PolicyTree:
    return PolicyTree(files={name: text.encode() for name, text in files.items()})


@pytest.mark.parametrize("seed", [1, 2])
def test_random_edits_lower_and_plan_like_from_scratch(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    _removed.clear()
    files = _mesh(tmp_path, services=30)
    state: dict[str, int] = {}
    file_cache, lowerings, planner = FileCache(), LoweringCache(), Planner()
    previous = (_tree(files), dict(state))
    meanings, assembled = MeaningCache(), LoweringCache()
    reused = compiled = patched = 0
    for step in range(STEPS):
        if _removed:
            name, text = _removed.popitem()
            files[name] = text
            what = f"restored {name}"
        else:
            what = rng.choice(EDITS)(files, state, rng)
        tree = _tree(files)
        compilation = compile_tree(tree, now=NOW, rollout_state=state, cache=file_cache)
        fresh = compile_tree(tree, now=NOW, rollout_state=state)
        incremental = lower_istio_keyed(
            compilation.model, now=NOW, rollout_state=state, cache=lowerings
        )
        scratch = lower_istio_keyed(fresh.model, now=NOW, rollout_state=state)
        reused += lowerings.hits
        # a local edit re-resolves the model from the last one, which this cache lowered
        assert lowerings.patched == (compilation.model.change is not None), f"step {step}"
        patched += lowerings.patched
        assert [key for group in incremental for key, _ in group] == [
            key for group in scratch for key, _ in group
        ], f"step {step} ({what}): different objects"
        assert to_yaml_stream(o for g in incremental for _, o in g) == to_yaml_stream(
            o for g in scratch for _, o in g
        ), f"step {step} ({what}): incremental lowering differs from a fresh one"
        if compilation.ok:
            compiled += 1
            artifacts = lower(compilation, cache=assembled)
            assert artifacts.objects == lower(fresh).objects, f"step {step} ({what})"
            assert [k for k, _ in artifacts] == sorted(artifacts.objects)
            assert summarise(compilation, meanings) == summarise(fresh), (
                f"step {step} ({what}): the incremental meaning differs from a fresh one"
            )
        warm = _plan(planner, previous, (tree, state))
        cold = _plan(Planner(), previous, (tree, state))
        assert warm == cold, f"step {step} ({what}): the warm planner's plan differs"
        previous = (tree, dict(state))
    assert compiled > STEPS // 2, "too few steps compiled to check the meaning"
    assert reused > STEPS * 15, "the cache reused almost nothing: the memo is not working"
    assert patched >= 3, "too few local edits to check the patched lowering"


def _plan(
    planner: Planner,
    base: tuple[PolicyTree, dict[str, int]],
    head: tuple[PolicyTree, dict[str, int]],
) -> str:
    sides = [
        planner.compile_side(Revision(label, None, None), tree, now=NOW, rollout_state=state)
        for label, (tree, state) in (("base", base), ("head", head))
    ]
    return json.dumps(plan_document(build_plan(*sides, now=NOW)), sort_keys=True)


def test_unchanged_services_get_the_same_objects_back(tmp_path: Path) -> None:
    """A one-file edit re-lowers the edited service and its callers' dependents only;
    every other service's objects are the very objects of the previous lowering."""
    files = _mesh(tmp_path, services=30)
    file_cache, lowerings = FileCache(), LoweringCache()
    first = lower(compile_tree(_tree(files), now=NOW, cache=file_cache), cache=lowerings)
    assert (lowerings.hits, lowerings.misses) == (0, 30)
    name = _pick(files, random.Random(0))
    rule = "  - from: [{ingressGateway: true}]\n    to: {methods: [GET], paths: ['/health']}\n"
    files[name] = files[name].replace("  rules:\n", "  rules:\n" + rule, 1)
    second = lower(compile_tree(_tree(files), now=NOW, cache=file_cache), cache=lowerings)
    assert lowerings.misses == 1 and lowerings.hits == 29
    namespace, service = _name_of(files[name])
    mesh_wide = {"meshc-allow-nothing", "default"}
    recomputed = {
        key
        for key, obj in second
        if first.objects.get(key) is not obj and key.name not in mesh_wide
    }
    assert recomputed and {(k.namespace, k.name.removesuffix("-allow")) for k in recomputed} == {
        (namespace, service)
    }
    changed = {str(key) for key, obj in second if first.objects.get(key) != obj}
    allow = f"AuthorizationPolicy.security.istio.io/{namespace}/{service}-allow"
    assert allow in changed
    assert changed <= {allow, f"NetworkPolicy.networking.k8s.io/{namespace}/{service}"}


def test_a_renamed_identity_relowers_the_services_that_name_it(tmp_path: Path) -> None:
    files = _mesh(tmp_path, services=30)
    file_cache, lowerings = FileCache(), LoweringCache()
    first = lower(compile_tree(_tree(files), now=NOW, cache=file_cache), cache=lowerings)
    caller = next(n for n in _service_files(files) if "calls: [" in files[n])
    namespace, service = _name_of(files[caller])
    files[caller] = files[caller].replace(f"identity: {service}-sa", f"identity: {service}-v2")
    second = lower(compile_tree(_tree(files), now=NOW, cache=file_cache), cache=lowerings)
    principal = f"bench.local/ns/{namespace}/sa/{service}-v2"
    holders = [
        key for key, obj in second if principal in json.dumps(obj) and first.objects[key] != obj
    ]
    assert holders, "no AuthorizationPolicy picked up the caller's new identity"
    assert lowerings.misses == 1 + len({key.name.rsplit("-", 1)[0] for key in holders})


def test_the_cache_stays_bounded_and_keeps_the_latest_lowering(tmp_path: Path) -> None:
    """Every mesh-wide change makes every group new; old generations are dropped once
    the cache outgrows a few meshes, and the newest lowering stays cached."""
    from compiler.lower.cache import KEEP_GENERATIONS

    files = _mesh(tmp_path, services=20)
    file_cache, lowerings = FileCache(), LoweringCache()
    bound = 2 * KEEP_GENERATIONS * (20 + 16)
    for domain in range(20):
        files["mesh.yaml"] = re.sub(
            r"trustDomain: \S+", f"trustDomain: t{domain}.local", files["mesh.yaml"]
        )
        compilation = compile_tree(_tree(files), now=NOW, cache=file_cache)
        lower(compilation, cache=lowerings)
        assert lowerings.misses == 20, "a new trust domain must re-lower every service"
        assert len(lowerings.entries) <= bound
    assert len(lowerings.entries) < 20 * 20, "nothing was ever dropped"
    lower(compilation, cache=lowerings)
    assert (lowerings.hits, lowerings.misses) == (20, 0)


def test_a_selector_change_relowers_rules_that_name_its_identity(tmp_path: Path) -> None:
    """A rule naming `ns/account` selects the pods of the services running as it
    (NetworkPolicy): changing such a service's selector must re-lower the rule's server."""
    files = _mesh(tmp_path, services=30)
    server = next(n for n in _service_files(files) if "  rules:\n" in files[n])
    caller = next(n for n in _service_files(files) if n != server)
    namespace, service = _name_of(files[caller])
    rule = f"  - from: [{{identity: {namespace}/{service}-sa}}]\n    to: {{methods: [GET]}}\n"
    files[server] = files[server].replace("  rules:\n", "  rules:\n" + rule, 1)
    file_cache, lowerings = FileCache(), LoweringCache()
    first = lower(compile_tree(_tree(files), now=NOW, cache=file_cache), cache=lowerings)
    files[caller] = files[caller].replace(
        "spec:\n", f"spec:\n  selector: {{app: {service}, lane: blue}}\n", 1
    )
    compilation = compile_tree(_tree(files), now=NOW, cache=file_cache)
    second = lower(compilation, cache=lowerings)
    fresh = lower(compile_tree(_tree(files), now=NOW))
    assert to_yaml_stream(o for _, o in second) == to_yaml_stream(o for _, o in fresh)
    server_ns, server_name = _name_of(files[server])
    changed = {str(key) for key, obj in second if first.objects.get(key) != obj}
    assert f"NetworkPolicy.networking.k8s.io/{server_ns}/{server_name}" in changed


def test_groups_with_a_shared_identity_are_refused_like_single_objects() -> None:
    from compiler.artifacts import Artifacts, ObjectKey

    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "n"}}
    key = ObjectKey.of(obj)
    with pytest.raises(ValueError, match="two emitted objects share the identity ConfigMap/n/a"):
        Artifacts.of_groups([((key, obj),), ((key, dict(obj)),)])
    assert list(Artifacts.of_groups([((key, obj),), ()])) == [(key, obj)]


def test_object_keys_hash_by_value_and_survive_pickling() -> None:
    import pickle

    from compiler.artifacts import ObjectKey

    key = ObjectKey("security.istio.io", "AuthorizationPolicy", "shop", "cart-allow")
    twin = ObjectKey("security.istio.io", "AuthorizationPolicy", "shop", "cart-allow")
    assert key == twin and hash(key) == hash(twin) and {key: 1}[twin] == 1
    copy = pickle.loads(pickle.dumps(key))
    assert copy == key and hash(copy) == hash(key)
    assert repr(key) == (
        "ObjectKey(group='security.istio.io', kind='AuthorizationPolicy', namespace='shop', "
        "name='cart-allow')"
    )
    assert sorted([key, ObjectKey("a", "b", "c", "d")])[0].group == "a"
