"""Snapshots as JSON, the form people read them in (`meshc render --target envoy`, like
`istioctl proxy-config`) and the golden tests compare: Envoy's own JSON mapping of each
resource (`MessageToDict`), typed configs with their `@type`, keys sorted when printed."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from compiler.lower.envoy.snapshot import CLUSTER, ENDPOINTS, LISTENER, ROUTE, Snapshot

SECTIONS = (
    ("listeners", LISTENER),
    ("routes", ROUTE),
    ("clusters", CLUSTER),
    ("endpoints", ENDPOINTS),
)


def resource_json(resource: Message) -> dict[str, Any]:
    found: dict[str, Any] = MessageToDict(resource)
    return found


def snapshot_json(snapshot: Snapshot) -> dict[str, Any]:
    """One node's snapshot: node, identity, each type's resources in name order with the
    version a server would push, and the SDS names it may fetch."""
    out: dict[str, Any] = {
        "node": {"id": snapshot.node_id, "cluster": snapshot.cluster},
        "identity": snapshot.identity,
        "secrets": {
            name: {"kind": ref.kind, "identity": ref.identity}
            for name, ref in sorted(snapshot.secrets.items())
        },
    }
    for section, type_url in SECTIONS:
        named = snapshot.resources.get(type_url, {})
        out[section] = {
            "version": snapshot.version(type_url),
            "resources": [resource_json(named[name]) for name in sorted(named)],
        }
    return out


def snapshots_text(snapshots: Mapping[str, Snapshot]) -> str:
    """Node id → snapshot, as indented JSON with sorted keys (the same bytes for the same
    input)."""
    listing = {node: snapshot_json(snapshot) for node, snapshot in sorted(snapshots.items())}
    return json.dumps(listing, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
