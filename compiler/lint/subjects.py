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
from compiler.model.delta import patched
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
    subjects = _changed_subjects(model)
    if subjects is None:
        subjects = _all_subjects(model)
    model.lint_index["subjects"] = subjects
    return subjects


def _all_subjects(model: MeshModel) -> dict[ServiceKey, Subject]:
    subjects = {key: Subject(key, view) for key, view in model.services.items()}
    for policy in model.policies:
        _subject(subjects, target_key(policy)).policies.append(policy)
    for rollout in model.rollouts:
        _subject(subjects, target_key(rollout)).rollouts.append(rollout)
    for res in model.resilience:
        _subject(subjects, target_key(res)).resilience.append(res)
    return subjects


def _changed_subjects(model: MeshModel) -> dict[ServiceKey, Subject] | None:
    """The previous model's subjects with the touched ones rebuilt, when the model was
    re-resolved from one whose subjects are known (`ModelChange`). A key that only
    policies name and that is new comes last (subject order never reaches the output:
    findings are sorted)."""
    change = model.change
    previous = change.previous() if change is not None else None
    before = previous.lint_index.get("subjects") if previous is not None else None
    if change is None or before is None:
        return None
    subjects = dict(before)
    gone = {id(intent) for intent in change.removed}
    added = [i for i in change.added if i.doc.kind != "Service" and i.doc.kind != "Mesh"]
    for key in change.touched:
        view = model.services.get(key)
        if view is not None:
            subject = Subject(key, view, view.policies, view.rollouts, view.resilience)
        else:
            old = before.get(key) or Subject(key, None)
            new = [intent for intent in added if target_key(intent) == key]
            subject = Subject(
                key,
                None,
                patched(old.policies, gone, new, "AccessPolicy"),
                patched(old.rollouts, gone, new, "Rollout"),
                patched(old.resilience, gone, new, "Resilience"),
            )
        if next(iter(subject.intents()), None) is None:
            subjects.pop(key, None)
        else:
            subjects[key] = subject
    return subjects


def namespaces_of(model: MeshModel) -> frozenset[str]:
    """The namespaces with a declared service (computed once per model)."""
    cached: frozenset[str] | None = model.lint_index.get("namespaces")
    if cached is None and model.change is not None:  # the same services: the same namespaces
        previous = model.change.previous()
        cached = previous.lint_index.get("namespaces") if previous is not None else None
        if cached is not None:
            model.lint_index["namespaces"] = cached
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


@dataclass(frozen=True, slots=True)
class Fingerprints:
    """One model's fingerprints and what a re-resolved model's are patched from."""

    shared: str
    own: dict[ServiceKey, str]
    references: dict[ServiceKey, tuple[ServiceKey, ...]]
    referrers: dict[ServiceKey, frozenset[ServiceKey]]
    """Each key -> the subjects whose references include it (their fingerprints hold
    its own hash)."""
    prints: dict[ServiceKey, str]
    redone: frozenset[ServiceKey] | None = None
    """When patched from the previous model's: the keys whose fingerprint was recomputed
    (every other key's is unchanged); None when all were computed."""


def fingerprints(
    model: MeshModel,
    digests: Mapping[str, str],
    *,
    memo: RefMemo | None = None,
    owns: OwnMemo | None = None,
) -> dict[ServiceKey, str]:
    """Each subject's input fingerprint; `digests` maps every file to its content hash.

    `memo` (kept across compiles, and on disk) remembers each subject's references by its
    own hash; it is pruned to the subjects of this model when it grows. A model re-resolved
    from one whose fingerprints are known (`ModelChange`) recomputes only its touched
    subjects and the subjects referencing them. Raises KeyError when a document's file has
    no digest (a fingerprint must never guess)."""
    memo = memo if memo is not None else {}
    found = _changed_fingerprints(model, digests, memo, owns)
    if found is None:
        found = _all_fingerprints(model, digests, memo, owns)
    model.lint_index["fingerprints"] = found
    return found.prints


def _all_fingerprints(
    model: MeshModel, digests: Mapping[str, str], memo: RefMemo, owns: OwnMemo | None
) -> Fingerprints:
    subjects = subjects_of(model)
    if owns is None:
        own = {key: _own(subject, digests) for key, subject in subjects.items()}
    else:
        own = {key: _own_memoised(subject, digests, owns) for key, subject in subjects.items()}
    references = {key: _references(subject, own[key], memo) for key, subject in subjects.items()}
    referrers: dict[ServiceKey, set[ServiceKey]] = {}
    for key, named in references.items():
        for ref in named:
            referrers.setdefault(ref, set()).add(key)
    shared = _mesh_wide(model, digests)
    prints = {key: _print(shared, own, mine, references[key]) for key, mine in own.items()}
    _prune(subjects, own, memo, owns)
    frozen = {key: frozenset(found) for key, found in referrers.items()}
    return Fingerprints(shared, own, references, frozen, prints)


def _changed_fingerprints(
    model: MeshModel, digests: Mapping[str, str], memo: RefMemo, owns: OwnMemo | None
) -> Fingerprints | None:
    """The previous model's fingerprints, patched: a touched subject's own hash and
    references are recomputed, then the fingerprints of the touched subjects and of every
    subject referencing one. The mesh-wide part is unchanged by `ModelChange`'s contract,
    and an untouched subject's files (so their digests) are unchanged."""
    change = model.change
    previous = change.previous() if change is not None else None
    before: Fingerprints | None = (
        previous.lint_index.get("fingerprints") if previous is not None else None
    )
    if change is None or before is None:
        return None
    subjects = subjects_of(model)
    own = dict(before.own)
    references = dict(before.references)
    referrers = dict(before.referrers)
    for key in change.touched:
        for ref in references.pop(key, ()):
            referrers[ref] = referrers[ref] - {key}
        subject = subjects.get(key)
        if subject is None:
            own.pop(key, None)
            continue
        own[key] = (
            _own_memoised(subject, digests, owns) if owns is not None else _own(subject, digests)
        )
        references[key] = _references(subject, own[key], memo)
        for ref in references[key]:
            referrers[ref] = referrers.get(ref, frozenset()) | {key}
    prints = dict(before.prints)
    redo = set(change.touched)
    for key in change.touched:
        redo.update(referrers.get(key, ()))
    for key in redo:
        if key in own:
            prints[key] = _print(before.shared, own, own[key], references[key])
        else:
            prints.pop(key, None)
    _prune(subjects, own, memo, owns)
    return Fingerprints(before.shared, own, references, referrers, prints, frozenset(redo))


def _prune(
    subjects: dict[ServiceKey, Subject],
    own: dict[ServiceKey, str],
    memo: RefMemo,
    owns: OwnMemo | None,
) -> None:
    """Drop the memo entries of subjects no longer in the model, once the memos have
    outgrown it (amortised: a long watch session adds a few entries per compile)."""
    if owns is not None and len(owns) > 4 * len(own) + 64:
        live = {id(next(iter(subject.intents()))) for subject in subjects.values()}
        for gone in [ident for ident in owns if ident not in live]:
            del owns[gone]
    if len(memo) > 2 * len(own) + 64:
        current = set(own.values())
        for stale in [h for h in memo if h not in current]:
            del memo[stale]


def _references(subject: Subject, own: str, memo: RefMemo) -> tuple[ServiceKey, ...]:
    """The subject's references, remembered by its own hash (they depend on nothing else)."""
    found = memo.get(own)
    if found is None:
        found = memo[own] = tuple(subject.references())
    return found


def _print(
    shared: str, own: dict[ServiceKey, str], mine: str, references: tuple[ServiceKey, ...]
) -> str:
    # each referenced subject's own hash covers its key; an undeclared one is "-key"
    refs = sorted([own.get(ref) or f"-{ref}" for ref in references])
    text = "\n".join([shared, mine, *refs])
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


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
        """Keep what this compile and the one before it used (pruned once the cache holds
        a few dozen more: a patched re-lint adds a handful of entries, not a mesh's worth)."""
        keep = used | self.previous
        self.previous = used
        if len(self.entries) <= len(keep) + 64 and len(self.flat) <= len(keep) + 64:
            return
        for stale in [entry for entry in self.entries if entry not in keep]:
            del self.entries[stale]
        for stale in [entry for entry in self.flat if entry not in keep]:
            del self.flat[stale]


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
