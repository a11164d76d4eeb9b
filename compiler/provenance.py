"""Provenance: the annotation naming the intent document an emitted object came from.

Written by the backends on every Kubernetes object they emit, read back by the checks
that locate a finding at its intent line (`compiler.verify`) and by `meshc render FILE`
to keep one file's objects. Kept out of the backends so those readers need none of them.
"""

from __future__ import annotations

from typing import Any

SOURCE = "meshc.io/source"
"""The annotation's key; its value is the intent's ref (`file#Kind/namespace/name`)."""


def source_of(obj: dict[str, Any]) -> str:
    """The object's source ref, or "" when it carries none (an object meshc did not emit)."""
    return str(((obj.get("metadata") or {}).get("annotations") or {}).get(SOURCE, ""))
