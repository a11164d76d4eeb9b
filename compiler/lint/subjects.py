"""Per-service lint subjects and their input fingerprints: what makes re-linting incremental.

A *subject* is one service key together with every document written for it: the Service
(if one is declared), and the AccessPolicies, Rollouts and Resilience policies whose
`spec.service` names it (so a policy for an undeclared service still has a subject).
A subject rule (`registry.subject_rule`) looks at one subject at a time and may read:

* the subject's own documents (their data and their spans);
* the documents of the services it *references*: its declared `calls:` and the services
  named by its policies' `from: [{service: ...}]` sources (whether they exist, their
  Service, their calls, their policies...);
* mesh-wide facts: the Mesh settings, every service's key and SPIFFE identity (so the
  set of namespaces and identities too).

It must not read `now` (it gets no clock) nor anything else of other services. The
fingerprint below covers exactly that, so a subject whose fingerprint did not change
yields the same findings — which is what lets `LintCache` reuse them across compiles.
Fingerprints are built from file names and content hashes: editing a file changes the
fingerprint of every subject with a document in it or referencing one in it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from compiler.diagnostics import Diagnostic
from compiler.kinds.access_policy.model import AccessPolicyDocument
from compiler.kinds.resilience.model import ResilienceDocument
from compiler.kinds.rollout.model import RolloutDocument
from compiler.model.mesh import MeshModel, ServiceKey, ServiceView, target_key
from compiler.validate import Intent


@dataclass(slots=True)
class Subject:
    """One service key and every document written for it (see the module docstring)."""

    key: ServiceKey
    view: ServiceView | None
    policies: list[Intent[AccessPolicyDocument]] = field(default_factory=list)
    rollouts: list[Intent[RolloutDocument]] = field(default_factory=list)
    resilience: list[Intent[ResilienceDocument]] = field(default_factory=list)

    def intents(self) -> Iterable[Intent[Any]]:
        if self.view is not None:
            yield self.view.intent
        yield from self.policies
        yield from self.rollouts
        yield from self.resilience

    def references(self) -> set[ServiceKey]:
        """The services this subject's rules may look into: calls and named sources.

        A function of the subject's own documents only (so of its `_own` hash)."""
        found: set[ServiceKey] = set(self.view.calls) if self.view is not None else set()
        for policy in self.policies:
            namespace = policy.model.metadata.namespace
            for rule in policy.model.spec.rules:
                for source in rule.from_:
                    if source.service and source.service != "*":
                        found.add(ServiceKey.parse(source.service, namespace))
        return found


RefMemo = dict[str, tuple[ServiceKey, ...]]
"""A subject's own hash -> its references (they depend on its own documents only)."""


@dataclass(frozen=True, slots=True)
class SubjectContext:
    """What a subject rule sees: the model (no clock: subject findings must not age)."""

    model: MeshModel


def subjects_of(model: MeshModel) -> dict[ServiceKey, Subject]:
    """Every subject of the model, declared services first (in model order), then the
    keys that only policies name (in document order). Computed once per model."""
    cached: dict[ServiceKey, Subject] | None = model.lint_index.get("subjects")
    if cached is not None:
        return cached
    subjects = {key: Subject(key, view) for key, view in model.services.items()}
    for policy in model.policies:
        _subject(subjects, target_key(policy)).policies.append(policy)
    for rollout in model.rollouts:
        _subject(subjects, target_key(rollout)).rollouts.append(rollout)
    for res in model.resilience:
        _subject(subjects, target_key(res)).resilience.append(res)
    model.lint_index["subjects"] = subjects
    return subjects


def namespaces_of(model: MeshModel) -> frozenset[str]:
    """The namespaces with a declared service (computed once per model)."""
    cached: frozenset[str] | None = model.lint_index.get("namespaces")
    if cached is None:
        cached = model.lint_index["namespaces"] = frozenset(key.namespace for key in model.services)
    return cached


def _subject(subjects: dict[ServiceKey, Subject], key: ServiceKey) -> Subject:
    found = subjects.get(key)
    if found is None:
        found = subjects[key] = Subject(key, None)
    return found


OwnMemo = dict[int, tuple[tuple[Intent[Any], ...], tuple[str, ...], tuple[str, ...], str]]
"""id(first intent) -> (the subject's intents, their files, those files' content hashes,
its own hash): reused while the intents are the same objects and the files' hashes equal."""


def fingerprints(
    model: MeshModel,
    digests: Mapping[str, str],
    *,
    memo: RefMemo | None = None,
    owns: OwnMemo | None = None,
) -> dict[ServiceKey, str]:
    """Each subject's input fingerprint; `digests` maps every file to its content hash.

    `memo` (kept across compiles, and on disk) remembers each subject's references by its
    own hash; it is pruned to the subjects of this model when it grows. Raises KeyError
    when a document's file has no digest (a fingerprint must never guess)."""
    subjects = subjects_of(model)
    if owns is None:
        own = {key: _own(subject, digests) for key, subject in subjects.items()}
    else:
        own = {key: _own_memoised(subject, digests, owns) for key, subject in subjects.items()}
        if len(owns) > 4 * len(own) + 64:
            live = {id(next(iter(subject.intents()))) for subject in subjects.values()}
            for gone in [ident for ident in owns if ident not in live]:
                del owns[gone]
    shared = _mesh_wide(model, digests)
    memo = memo if memo is not None else {}
    out: dict[ServiceKey, str] = {}
    for key, subject in subjects.items():
        mine = own[key]
        references = memo.get(mine)
        if references is None:
            references = memo[mine] = tuple(subject.references())
        # each referenced subject's own hash covers its key; an undeclared one is "-key"
        refs = sorted([own.get(ref) or f"-{ref}" for ref in references])
        text = "\n".join([shared, mine, *refs])
        out[key] = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
    if len(memo) > 2 * len(own):
        current = set(own.values())
        for stale in [h for h in memo if h not in current]:
            del memo[stale]
    return out


def _own(subject: Subject, digests: Mapping[str, str]) -> str:
    """The subject's key and the files holding its documents (name and content hash), in
    document order, hashed short (it is repeated in the fingerprint of every referrer)."""
    text = str(subject.key) + "".join(
        f"|{intent.doc.file}@{digests[intent.doc.file]}#{intent.doc.index}"
        for intent in subject.intents()
    )
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def _own_memoised(subject: Subject, digests: Mapping[str, str], owns: OwnMemo) -> str:
    """`_own(subject, digests)`, reused while nothing it reads changed: the intents (by
    identity: they fix the key, files and indexes) and the files' content hashes."""
    intents = tuple(subject.intents())
    found = owns.get(id(intents[0]))
    if (
        found is not None
        and len(found[0]) == len(intents)
        and all(a is b for a, b in zip(found[0], intents, strict=True))
        and all(digests[f] == d for f, d in zip(found[1], found[2], strict=True))
    ):
        return found[3]
    own = _own(subject, digests)
    files = tuple(intent.doc.file for intent in intents)
    owns[id(intents[0])] = (intents, files, tuple(digests[f] for f in files), own)
    return own


def _mesh_wide(model: MeshModel, digests: Mapping[str, str]) -> str:
    """The Mesh settings' file, and every declared service's key and identity."""
    mesh = model.mesh
    where = f"{mesh.doc.file}@{digests[mesh.doc.file]}#{mesh.doc.index}" if mesh else "-"
    digest = hashlib.blake2b(where.encode(), digest_size=16)
    for key, view in model.services.items():
        digest.update(f"\n{key}={view.spiffe_id}".encode())
    return digest.hexdigest()


@dataclass(slots=True)
class LintCache:
    """Subject findings kept across compiles (in memory; `compiler.cache` persists it).

    Pass one to `compile_tree(..., lint_cache=...)` for every compile of a session (a watch
    loop, the planner's base and head): subjects whose fingerprint is unchanged reuse their
    findings. Entries used by the last two compiles are kept, so alternating between two
    trees (base and head) stays warm; everything else is dropped.
    """

    entries: dict[tuple[ServiceKey, str], dict[str, list[Diagnostic]]] = field(default_factory=dict)
    previous: set[tuple[ServiceKey, str]] = field(default_factory=set)
    references: RefMemo = field(default_factory=dict)
    """Each subject's references by its own hash (see `fingerprints`)."""
    owns: OwnMemo = field(default_factory=dict)
    """Each subject's own hash by its intents (see `fingerprints`; in memory only)."""
    reused: int = 0
    """Subjects reused by the last compile (for tests and benchmarks)."""
    flat: dict[tuple[ServiceKey, str], tuple[tuple[str, ...], list[Diagnostic]]] = field(
        default_factory=dict
    )
    """Per entry, the rule codes run and all their findings joined in that order: a reused
    subject costs one lookup, not one per rule (in memory only; derived from `entries`)."""

    def lookup(self, key: ServiceKey, fingerprint: str) -> dict[str, list[Diagnostic]]:
        found = self.entries.get((key, fingerprint))
        if found is None:
            found = self.entries[(key, fingerprint)] = {}
        return found

    def retain(self, used: set[tuple[ServiceKey, str]]) -> None:
        """Keep what this compile and the one before it used."""
        keep = used | self.previous
        for stale in [entry for entry in self.entries if entry not in keep]:
            del self.entries[stale]
        for stale in [entry for entry in self.flat if entry not in keep]:
            del self.flat[stale]
        self.previous = used


def subject_views(subject: Subject) -> Iterator[ServiceView]:
    """The subject's declared service, if there is one (a loop over "every service")."""
    if subject.view is not None:
        yield subject.view


def subject_rollouts(subject: Subject) -> Iterator[tuple[Intent[RolloutDocument], ServiceView]]:
    """The subject's Rollouts with its service, when the service is declared."""
    if subject.view is not None:
        for intent in subject.rollouts:
            yield intent, subject.view


def subject_resilience(
    subject: Subject,
) -> Iterator[tuple[Intent[ResilienceDocument], ServiceView]]:
    """The subject's Resilience policies with its service, when the service is declared."""
    if subject.view is not None:
        for intent in subject.resilience:
            yield intent, subject.view
