"""Lint subjects: one service key with every document written for it.

A *subject* is a service key together with its Service (if one is declared) and the
AccessPolicies, Rollouts and Resilience policies whose `spec.service` names it (so a
policy for an undeclared service still has a subject). A subject rule
(`registry.subject_rule`) looks at one subject at a time and reads anything else through
the model it is given; the engine records those reads, so a subject's findings are
recomputed exactly when something they read changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from compiler.engine import Engine
from compiler.kinds.resilience.model import ResilienceDocument
from compiler.kinds.rollout.model import RolloutDocument
from compiler.model.mesh import Attached, MeshModel, ServiceKey, ServiceView
from compiler.model.queries import attachments, key_files, service_keys, service_view
from compiler.validate import Intent


@dataclass(frozen=True, slots=True)
class Subject(Attached):
    """One service key and every document written for it (see the module docstring)."""

    key: ServiceKey
    view: ServiceView | None
    attached: Mapping[str, tuple[Intent[Any], ...]]

    def intents(self) -> Iterable[Intent[Any]]:
        if self.view is not None:
            yield self.view.intent
        for found in self.attached.values():
            yield from found


@dataclass(frozen=True, slots=True)
class SubjectContext:
    """What a subject rule sees: the model (no clock: subject findings must not age)."""

    model: MeshModel


def subject_keys(db: Engine) -> tuple[ServiceKey, ...]:
    """Every subject: declared services first (in declaration order), then the keys that
    only attached documents name (in the order first named)."""
    declared = db.query(service_keys)
    known = set(declared)
    return (*declared, *(key for key in db.query(key_files) if key not in known))


def subject(db: Engine, key: ServiceKey) -> Subject:
    return Subject(key, db.query(service_view, key), db.query(attachments, key))


def subjects_of(model: MeshModel) -> list[Subject]:
    """Every subject of a model, in `subject_keys` order (for callers outside the engine)."""
    by_key: dict[ServiceKey, dict[str, list[Intent[Any]]]] = {}
    for found in (model.policies, model.rollouts, model.resilience):
        for intent in found:
            meta = intent.model.metadata
            key = ServiceKey.parse(intent.model.spec.service, meta.namespace)
            by_key.setdefault(key, {}).setdefault(intent.doc.kind, []).append(intent)
    keys = [*model.services, *(key for key in by_key if key not in model.services)]
    return [
        Subject(
            key,
            model.services.get(key),
            {kind: tuple(found) for kind, found in by_key.get(key, {}).items()},
        )
        for key in keys
    ]


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
