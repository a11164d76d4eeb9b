"""Where a finding about an emitted object points: the intent document it came from."""

from __future__ import annotations

from typing import Any

from compiler.api import Compilation
from compiler.diagnostics import Span
from compiler.provenance import source_of


def intent_span(compilation: Compilation, obj: dict[str, Any]) -> Span:
    """The `metadata.name` of the object's source intent (its `meshc.io/source`), or the
    file the reference names when the intent is not found (mesh defaults: "-")."""
    ref = source_of(obj)
    for result in compilation.files.values():
        for intent in result.intents:
            if intent.ref == ref:
                return intent.doc.span("metadata", "name")
    return Span(ref.split("#")[0] or "-")
