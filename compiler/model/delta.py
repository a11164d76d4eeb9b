"""Re-resolve a model after a few files changed, sharing every view they do not touch.

A one-file edit of a 1,000-service mesh rewrites the documents of one or two services.
When it leaves the mesh-wide facts alone — the Mesh document, and which services exist
with which identities, in which order — every other service's view is still right, and
so is everything a later phase derived from it. `resolve_changed` builds the new model
from the old one in time proportional to the change and records a `ModelChange`, which
lets the lint, lowering and meaning phases redo only the touched services and the
services that read them. Any other edit returns None: the caller resolves from scratch.
"""

from __future__ import annotations

import bisect
import weakref
from collections.abc import Iterable
from typing import Any

from compiler.model.mesh import (
    MeshModel,
    ModelChange,
    ServiceKey,
    ServiceView,
    service_facts,
    target_key,
)
from compiler.validate import Intent


def resolve_changed(
    previous: MeshModel,
    *,
    removed: dict[str, list[Intent[Any]]],
    added: dict[str, list[Intent[Any]]],
) -> MeshModel | None:
    """The model of `previous`'s tree with some files changed: `removed` and `added` hold
    each changed file's intents before and after (a file deleted or created has an empty
    list on one side). None when the change is not local (resolve from scratch)."""
    if previous.duplicate_services or not _same_services(removed, added):
        return None
    gone = [intent for found in removed.values() for intent in found]
    new = [intent for found in added.values() for intent in found]
    touched = frozenset(_keys(gone) | _keys(new))
    gone_ids = {id(intent) for intent in gone}
    services = dict(previous.services)
    for key in touched:
        view = previous.services.get(key)
        if view is not None:
            services[key] = _rebuilt(view, gone_ids, [i for i in new if _key(i) == key])
    files = sorted(removed.keys() | added.keys())
    model = MeshModel(
        mesh=previous.mesh,
        settings=previous.settings,
        meshes=previous.meshes,
        services=services,
        duplicate_services=[],
        policies=_spliced(previous.policies, files, added, "AccessPolicy"),
        rollouts=_spliced(previous.rollouts, files, added, "Rollout"),
        resilience=_spliced(previous.resilience, files, added, "Resilience"),
        identities=previous.identities,
    )
    model.change = ModelChange(weakref.ref(previous), touched, tuple(gone), tuple(new))
    return model


def _spliced(
    old: list[Intent[Any]], files: list[str], added: dict[str, list[Intent[Any]]], kind: str
) -> list[Intent[Any]]:
    """`old` (in tree order: files sorted by name) with each changed file's run of intents
    replaced by its new intents of `kind`; `old` itself when nothing of `kind` changed."""
    out = old
    for file in files:
        low = bisect.bisect_left(out, file, key=_file)
        high = bisect.bisect_right(out, file, key=_file)
        new = [intent for intent in added.get(file, ()) if intent.doc.kind == kind]
        if low != high or new:
            out = [*out[:low], *new, *out[high:]]
    return out


def _file(intent: Intent[Any]) -> str:
    return intent.doc.file


def _same_services(
    removed: dict[str, list[Intent[Any]]], added: dict[str, list[Intent[Any]]]
) -> bool:
    """No Mesh document changed, and every changed file declares the same services with
    the same accounts, in the same order, before and after (so the services' keys, order
    and SPIFFE identities are unchanged)."""
    for file in removed.keys() | added.keys():
        before, after = removed.get(file, []), added.get(file, [])
        if any(i.doc.kind == "Mesh" for i in (*before, *after)):
            return False
        if _declared(before) != _declared(after):
            return False
    return True


def _declared(intents: list[Intent[Any]]) -> list[tuple[ServiceKey, str]]:
    return [
        (facts[0], facts[3])
        for facts in (service_facts(i) for i in intents if i.doc.kind == "Service")
    ]


def _key(intent: Intent[Any]) -> ServiceKey:
    """The service a document is written for."""
    return service_facts(intent)[0] if intent.doc.kind == "Service" else target_key(intent)


def _keys(intents: Iterable[Intent[Any]]) -> set[ServiceKey]:
    return {_key(intent) for intent in intents if intent.doc.kind != "Mesh"}


def _rebuilt(view: ServiceView, gone: set[int], new: list[Intent[Any]]) -> ServiceView:
    """A fresh view of a touched service: its Service from `new` when its file changed,
    and its policy lists without the `gone` intents, with the `new` ones in tree order."""
    declared = [i for i in new if i.doc.kind == "Service"]
    intent = declared[0] if declared else view.intent
    key, _, selector, account = service_facts(intent)
    return ServiceView(
        key=key,
        intent=intent,
        selector=dict(selector),
        service_account=account,
        spiffe_id=view.spiffe_id,
        policies=patched(view.policies, gone, new, "AccessPolicy"),
        rollouts=patched(view.rollouts, gone, new, "Rollout"),
        resilience=patched(view.resilience, gone, new, "Resilience"),
    )


def patched(
    old: list[Intent[Any]], gone: set[int], new: list[Intent[Any]], kind: str
) -> list[Intent[Any]]:
    """`old` minus the `gone` intents plus the `new` ones of `kind`, in tree order (files
    sorted by name, documents in file order: the order `resolve_model` sees them in)."""
    kept = [intent for intent in old if id(intent) not in gone]
    kept.extend(intent for intent in new if intent.doc.kind == kind)
    kept.sort(key=lambda intent: (intent.doc.file, intent.doc.index))
    return kept
