"""`--ca-status`: refuse a head whose trust anchors drop a root that live leaves chain to.

The status file is keyless (fingerprints and counts only; `meshd ca status --format json`);
its format is defined once, in `compiler.kinds.mesh.ca_status_format`, for writer and reader.
The comparison itself is the CA package's (`compiler.kinds.mesh.ca_status`), so the plan
and the reconciler agree on what "still trusted" means.
"""

from __future__ import annotations

import json
from typing import Any

from compiler.kinds.mesh.ca_status import check_ca_status
from compiler.kinds.mesh.model import MeshSpec


class CaStatusError(Exception):
    """The status file cannot be read as JSON."""


def load_ca_status(raw: bytes, *, source: str) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CaStatusError(
            f"{source}: not JSON ({exc}); expected the output of `meshd ca status --format json`"
        ) from None


def ca_refusals(spec: MeshSpec, status: Any) -> list[str]:
    """Why head must not be applied given the live certificates (empty = safe)."""
    return check_ca_status(spec, status)
