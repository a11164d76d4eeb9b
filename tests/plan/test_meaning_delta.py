"""A summary patched from the last one (`MeshModel.change`) equals a fresh summary.

Each test compiles a generated mesh through one `FileCache`, summarises it through one
`MeaningCache`, edits one file, and checks that the next summary took the patching path
(`MeaningCache.recomputed` is set, and names the services the edit reaches) and equals a
summary of a from-scratch compile through a new cache, dict order included.
"""

from __future__ import annotations

import random
import re
from dataclasses import replace
from pathlib import Path

import pytest

from compiler.api import Compilation, FileCache, compile_tree
from compiler.load.discover import PolicyTree
from compiler.model.mesh import ServiceKey
from compiler.plan.meaning import Meaning, MeaningCache, diff_meaning, summarise
from tests.bench.generate import generate_mesh
from tests.helpers import NOW

Files = dict[str, str]


class Session:
    """One long-lived compile and meaning cache, as a planner or watch session has."""

    def __init__(self, files: Files) -> None:
        self.files = dict(files)
        self.file_cache = FileCache()
        self.meanings = MeaningCache()
        self.state: dict[str, int] = {}
        self.compilation = self.compile()
        self.meaning = summarise(self.compilation, self.meanings)

    def compile(self) -> Compilation:
        tree = PolicyTree(files={name: text.encode() for name, text in self.files.items()})
        compilation = compile_tree(tree, now=NOW, rollout_state=self.state, cache=self.file_cache)
        assert compilation.ok, [d.message for d in compilation.diagnostics]
        return compilation

    def edit(self, file: str, old: str, new: str) -> Meaning:
        """Replace `old` (once) in `file`, recompile and summarise; check against fresh."""
        assert old in self.files[file], (file, old)
        self.files[file] = self.files[file].replace(old, new, 1)
        return self.step(file)

    def step(self, what: str) -> Meaning:
        self.compilation = self.compile()
        self.meaning = summarise(self.compilation, self.meanings)
        tree = PolicyTree(files={name: text.encode() for name, text in self.files.items()})
        fresh = summarise(compile_tree(tree, now=NOW, rollout_state=self.state), MeaningCache())
        assert self.meaning == fresh, f"{what}: the patched meaning differs from a fresh one"
        assert list(self.meaning.traffic) == list(fresh.traffic), what
        assert list(self.meaning.resilience) == list(fresh.resilience), what
        return self.meaning

    @property
    def recomputed(self) -> frozenset[ServiceKey]:
        """The services the last summary recomputed; fails if it did not patch."""
        recomputed = self.meanings.recomputed
        assert recomputed is not None, "the summary went over every service"
        assert self.compilation.model.change is not None
        return recomputed


@pytest.fixture
def mesh(tmp_path: Path) -> Files:
    generate_mesh(tmp_path, services=30, rules_per_service=4, seed=7)
    return {str(p.relative_to(tmp_path)): p.read_text() for p in sorted(tmp_path.rglob("*.yaml"))}


def _key(text: str) -> ServiceKey:
    name = re.search(r"^  name: (\S+)$", text, re.M)
    namespace = re.search(r"^  namespace: (\S+)$", text, re.M)
    assert name and namespace
    return ServiceKey(namespace.group(1), name.group(1))


def _file_of(files: Files, key: ServiceKey) -> str:
    return next(
        name for name, text in files.items() if "kind: Service\n" in text and _key(text) == key
    )


def _called_edge(session: Session) -> tuple[ServiceKey, ServiceKey]:
    """A (client, server) pair with an effective edge, the server's policy enforced."""
    for edge in sorted(session.meaning.effective):
        client = ServiceKey(*edge.client.split("/"))
        server = ServiceKey(*edge.server.split("/"))
        if client != server and "mode: enforce" in session.files[_file_of(session.files, server)]:
            return client, server
    raise AssertionError("the generated mesh has no enforced effective edge")


def test_a_called_servers_policy_change_recomputes_its_callers(mesh: Files) -> None:
    session = Session(mesh)
    client, server = _called_edge(session)
    before = {e for e in session.meaning.effective if e.client == str(client)}
    after = session.edit(_file_of(mesh, server), "mode: enforce", "mode: shadow")
    recomputed = session.recomputed
    assert server in recomputed and client in recomputed  # the client's file is unchanged
    assert len(recomputed) < len(session.compilation.model.services) // 2
    now = {e for e in after.effective if e.client == str(client)}
    assert now != before, "shadow mode allows every operation: the caller's edges change"
    assert any(e.server == str(server) and e.operation == "*" for e in now)


def _reads(session: Session, client: ServiceKey) -> set[ServiceKey]:
    """The services a client's effective edges read: its callees and those their rules name."""
    model = session.compilation.model
    reads = set(model.services[client].calls)
    for callee in model.services[client].calls:
        for policy in model.services[callee].policies if callee in model.services else []:
            for rule in policy.model.spec.rules:
                reads.update(
                    ServiceKey.parse(source.service, policy.model.metadata.namespace)
                    for source in rule.from_
                    if source.service and source.service != "*"
                )
    return reads


def _unread_service(session: Session) -> tuple[ServiceKey, ServiceKey, ServiceKey]:
    """An enforcing server, a caller of it, and a service that neither calls the server
    nor is read by the caller yet (so naming it makes a new dependency)."""
    model = session.compilation.model
    for server in sorted(model.services):
        if "mode: enforce" not in session.files[_file_of(session.files, server)]:
            continue
        for client, view in sorted(model.services.items()):
            if client == server or server not in view.calls:
                continue
            for named, candidate in sorted(model.services.items()):
                if (
                    named not in (client, server)
                    and server not in candidate.calls
                    and named not in _reads(session, client)
                    and "  calls: [" in session.files[_file_of(session.files, named)]
                ):
                    return server, client, named
    raise AssertionError("the generated mesh has no unread service to name")


def test_a_rule_naming_another_service_makes_the_servers_callers_read_it(mesh: Files) -> None:
    session = Session(mesh)
    server, client, named = _unread_service(session)
    # one step, two files: `named` now calls the server, whose new rule admits it
    named_file, server_file = _file_of(mesh, named), _file_of(mesh, server)
    session.files[named_file] = session.files[named_file].replace(
        "  calls: [", f"  calls: [{server}, ", 1
    )
    rule = f"  - from: [{{service: {named}}}]\n    to: {{methods: [PUT], paths: ['/named']}}\n"
    session.files[server_file] = session.files[server_file].replace(
        "  rules:\n", "  rules:\n" + rule, 1
    )
    after = session.step("a rule naming another service")
    assert {server, client, named} <= session.recomputed
    assert named in _reads(session, client)
    assert any(
        e.client == str(named) and e.server == str(server) and e.operation == "PUT /named"
        for e in after.effective
    ), "the named service gains the new operation"
    # the named service's identity now decides a rule the client's calls meet; an edit
    # of its own file that keeps its identity (a local change) cannot change that, so
    # only the named service is recomputed, and the result still equals a fresh summary
    session.edit(named_file, "v1: {labels: {version: v1}}", "v1: {labels: {version: v1, x: y}}")
    assert named in session.recomputed and client not in session.recomputed


def test_resilience_gained_and_lost_keeps_the_fresh_order(mesh: Files) -> None:
    session = Session(mesh)
    bare = next(
        f
        for f, text in sorted(mesh.items())
        if "kind: Service\n" in text and "kind: Resilience" not in text
    )
    key = _key(mesh[bare])
    block = (
        "---\napiVersion: meshc/v1\nkind: Resilience\nmetadata:\n"
        f"  name: {key.name}\n  namespace: {key.namespace}\n"
        f"spec:\n  service: {key.name}\n  timeout: 3s\n"
    )
    session.files[bare] += block
    gained = session.step("resilience added")
    assert session.recomputed >= {key}
    assert gained.resilience[str(key)] == {"timeout": "3s"}
    session.files[bare] = session.files[bare].replace(block, "")
    lost = session.step("resilience removed")
    assert str(key) not in lost.resilience and key in session.recomputed


def test_a_rollout_split_change_patches_the_traffic(mesh: Files) -> None:
    session = Session(mesh)
    file = next(f for f, text in sorted(mesh.items()) if "  split: {" in text)
    split = re.search(r"  split: \{(\w+): (\d+), (\w+): (\d+)\}", session.files[file])
    assert split, "the generated rollout has a two-way split"
    stable, canary = split.group(1), split.group(3)
    after = session.edit(file, split.group(0), f"  split: {{{stable}: 70, {canary}: 30}}")
    assert after.traffic[str(_key(mesh[file]))].shares == tuple(
        sorted({stable: 70, canary: 30}.items())
    )
    assert session.recomputed >= {_key(mesh[file])}


def test_identity_changes_and_foreign_summaries_take_the_full_path(mesh: Files) -> None:
    session = Session(mesh)
    file = next(f for f, text in sorted(mesh.items()) if "-sa\n" in text and "  timeout: " in text)
    session.edit(file, "-sa\n", "-other\n")  # a new SPIFFE ID: not a local change
    assert session.compilation.model.change is None and session.meanings.recomputed is None
    session.edit(file, "  timeout: ", "  timeout: 1")  # local again, from that summary
    assert session.recomputed >= {_key(mesh[file])}
    # a summary of another model in between: the next one cannot patch the last
    other = compile_tree(PolicyTree(files={k: v.encode() for k, v in mesh.items()}), now=NOW)
    summarise(other, session.meanings)
    session.edit(file, "  timeout: 1", "  timeout: 2")
    assert session.compilation.model.change is not None
    assert session.meanings.recomputed is None


def test_a_walk_of_local_edits_patches_every_step(mesh: Files) -> None:
    """Random rules, modes and labels, each step checked against a fresh summary, and
    the edge diffs (computed piece by piece) against the differences of the unions."""
    rng = random.Random(3)
    session = Session(mesh)
    services = sorted(session.compilation.model.services)
    first = session.meaning
    for step in range(14):
        file = rng.choice(sorted(f for f in session.files if "kind: Service\n" in session.files[f]))
        text = session.files[file]
        choice = rng.randrange(3)
        if choice == 0 and "  rules:\n" in text:
            named = rng.choice(services)
            rule = f"  - from: [{{service: {named}}}]\n    to: {{paths: ['/{step}']}}\n"
            session.files[file] = text.replace("  rules:\n", "  rules:\n" + rule, 1)
        elif choice == 1 and "mode: " in text:
            swapped = text.replace("mode: enforce", "mode: shadow")
            session.files[file] = (
                swapped if swapped != text else text.replace("mode: shadow", "mode: enforce")
            )
        else:
            label = "v1: {labels: {version: v1"
            assert label in text, file
            session.files[file] = text.replace(label, f"{label}, s{step}: x", 1)
        before = session.meaning
        after = session.step(f"step {step}: {file}")
        assert _key(mesh[file]) in session.recomputed, f"step {step}"
        for base in (first, before, Meaning()):
            diff = diff_meaning(base, after)
            assert diff.allowed_added == tuple(sorted(after.allowed - base.allowed))
            assert diff.allowed_removed == tuple(sorted(base.allowed - after.allowed))
            assert diff.effective_added == tuple(sorted(after.effective - base.effective))
            assert diff.effective_removed == tuple(sorted(base.effective - after.effective))


def test_the_same_side_again_is_the_last_summary(mesh: Files) -> None:
    session = Session(mesh)
    again = summarise(session.compilation, session.meanings)
    assert again is session.meaning and session.meanings.recomputed == frozenset()
    other_state = replace(session.compilation, rollout_state={"catalog/x": 1})
    assert summarise(other_state, session.meanings) == session.meaning
    assert session.meanings.recomputed is None, "another rollout state is summarised afresh"


def _service(name: str, *, calls: str = "", account: str | None = None) -> str:
    return (
        f"apiVersion: meshc/v1\nkind: Service\nmetadata: {{name: {name}, namespace: shop}}\n"
        f"spec:\n  identity: {account or name}\n"
        "  ports: [{name: http, port: 8080, protocol: http}]\n"
        "  versions: {v1: {labels: {version: v1}}}\n" + (f"  calls: [{calls}]\n" if calls else "")
    )


def test_a_named_services_new_identity_reaches_the_callers_of_the_server() -> None:
    """The full path: `api` allows `web` GET /a and `jobs` POST /b. When `jobs` starts
    running as `web`'s identity, the rule for `jobs` matches `web` too, so `web`'s own
    piece (unchanged inputs) must be recomputed through the services `api`'s rules name."""
    policy = (
        "apiVersion: meshc/v1\nkind: AccessPolicy\nmetadata: {name: api, namespace: shop}\n"
        "spec:\n  service: api\n  rules:\n"
        "  - from: [{service: web}]\n    to: {methods: [GET], paths: ['/a']}\n"
        "  - from: [{service: jobs}]\n    to: {methods: [POST], paths: ['/b']}\n"
    )
    session = Session(
        {
            "mesh.yaml": "apiVersion: meshc/v1\nkind: Mesh\nmetadata: {name: m}\n"
            "spec: {defaultAction: deny}\n",
            "api.yaml": _service("api") + "---\n" + policy,
            "web.yaml": _service("web", calls="api"),
            "jobs.yaml": _service("jobs", calls="api"),
        }
    )
    web = {e.operation for e in session.meaning.effective if e.client == "shop/web"}
    assert web == {"GET /a"}
    after = session.edit("jobs.yaml", "identity: jobs", "identity: web")
    assert {e.operation for e in after.effective if e.client == "shop/web"} == {"GET /a", "POST /b"}
