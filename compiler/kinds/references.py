"""Reference checks shared by the kinds that name one service in `spec.service`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from compiler.lint.registry import Finding
from compiler.model.mesh import MeshModel
from compiler.validate import Intent


def undeclared_service(
    model: MeshModel, intents: Iterable[Intent[Any]], kind: str
) -> Iterator[Finding]:
    """A finding at `spec.service` of each intent whose service no Service declares."""
    for intent in intents:
        spec = intent.model.spec
        namespace = intent.model.metadata.namespace
        if model.service(spec.service, namespace) is None and not model.declared_invalid(
            spec.service, namespace
        ):
            yield Finding(
                intent.span("service"),
                f"{kind} {namespace}/{intent.model.metadata.name}: "
                f"service {spec.service!r} is not declared",
                "declare the Service, or fix the name (use ns/name for another namespace)",
            )
