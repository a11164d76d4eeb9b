"""`meshd status` for a running `meshd up`: one line per proxy, like `istioctl proxy-status`.

It fetches the up process's status document (`reconciler.up.statusserver`) from the address
in the run state and prints it; it imports nothing of the server side, so it starts fast.
"""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from reconciler.up.runstate import NotRunning, RunState

COLUMNS = ("CDS", "LDS", "EDS", "RDS", "SDS")


def fetch_status(running: RunState, *, timeout: float = 5.0) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(running.status_url + "/status", timeout=timeout) as answer:
            data: dict[str, Any] = json.load(answer)
            return data
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise NotRunning(
            f"meshd up (pid {running.pid}) does not answer on {running.status_url}: {exc}"
        ) from None


def combined_version(types: Mapping[str, Any], which: str) -> str:
    """One version for all of a node's xDS types (pushed or ACKed): equal pushed and ACKed
    versions mean the proxy runs the latest configuration."""
    versions = [f"{name}={types[name][which]}" for name in sorted(types)]
    if not versions or any(types[name][which] is None for name in types):
        return "-"
    return hashlib.sha256(";".join(versions).encode()).hexdigest()[:12]


def status_lines(running: RunState, document: Mapping[str, Any]) -> list[str]:
    """A header with the loop's state, then one line per proxy and its NACKs under it."""
    loop = document["loop"]
    ready = next((c for c in loop["conditions"] if c["type"] == "Ready"), None)
    lines = [
        f"meshd up (pid {running.pid}) serving {running.policy_root}: "
        f"applied {loop['last_applied_revision'] or 'nothing'}, "
        f"last attempted {loop['last_attempted_revision'] or 'nothing'}"
        + (f", Ready={ready['status']} ({ready['reason']})" if ready else ""),
    ]
    lines += [f"  refused: {finding}" for finding in loop["findings"]]
    header = ("NODE", "SERVICE", "VERSION", "PID", "RESTARTS", *COLUMNS, "PUSHED", "ACKED")
    rows: list[tuple[str, ...]] = [header]
    notes: dict[int, list[str]] = {}
    for proxy in document["proxies"]:
        xds = proxy["xds"]
        types = xds["types"] if xds else {}
        states = [types[c]["state"] if c in types else "-" for c in COLUMNS]
        if xds is None:
            states = ["DISCONNECTED"] + ["-"] * (len(COLUMNS) - 1)
        rows.append(
            (
                proxy["node"],
                proxy["service"] or "-",
                proxy["version"] or "-",
                str(proxy["pid"] or "-"),
                str(proxy["restarts"]),
                *states,
                combined_version(types, "pushed"),
                combined_version(types, "acked"),
            )
        )
        note = [f"    {t} rejected: {s['nack']}" for t, s in sorted(types.items()) if s["nack"]]
        if proxy["last_exit"]:
            note.append(f"    envoy restarted {proxy['restarts']}x; last {proxy['last_exit']}")
        notes[len(rows) - 1] = note
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for index, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        lines += notes.get(index, [])
    return lines
