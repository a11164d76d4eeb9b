"""What `meshd status` shows about proxies (one line each, like `istioctl proxy-status`) and
the Prometheus text the xds target adds to `/metrics`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from reconciler.xds.secrets import IssuedCertificate
from reconciler.xds.session import SHORT_NAMES, Counters, Session, TypeState, iter_types

COLUMNS = ("CDS", "LDS", "EDS", "RDS", "SDS")


@dataclass(frozen=True, slots=True)
class TypeStatus:
    state: str
    """SYNCED (the last push was ACKed), STALE (pushed, no answer yet), NACKED, NOT SENT."""
    pushed_version: str | None
    acked_version: str | None
    pushed_at: datetime | None
    acked_at: datetime | None
    """With `pushed_at`: the push→ACK latency of the last accepted push."""
    nack_message: str | None


@dataclass(frozen=True, slots=True)
class ProxyStatus:
    node_id: str
    cluster: str
    identity: str
    connected_since: datetime
    generation: int
    """The generation of the snapshot it was last given (0: none yet, it waits)."""
    types: Mapping[str, TypeStatus]
    """By short name: CDS, LDS, EDS, RDS, SDS."""

    @property
    def nacks(self) -> dict[str, str]:
        return {t: s.nack_message for t, s in self.types.items() if s.nack_message is not None}


def type_status(state: TypeState) -> TypeStatus:
    if state.nack is not None:
        label = "NACKED"
    elif state.pending:
        label = "STALE"
    elif state.sent_nonce is None:
        label = "NOT SENT"
    else:
        label = "SYNCED"
    return TypeStatus(
        state=label,
        pushed_version=state.sent_version if state.sent_nonce else None,
        acked_version=state.acked_version,
        pushed_at=state.pushed_at,
        acked_at=state.acked_at,
        nack_message=state.nack.message if state.nack else None,
    )


def proxy_status(session: Session) -> ProxyStatus:
    types = {SHORT_NAMES[t]: type_status(state) for t, state in iter_types(session)}
    return ProxyStatus(
        node_id=session.node_id,
        cluster=session.node_cluster,
        identity=session.peer_identity,
        connected_since=session.connected_since,
        generation=session.generation,
        types=types,
    )


def status_table(proxies: Iterable[ProxyStatus]) -> str:
    """One line per proxy, then each NACK's message indented under its proxy."""
    header = ("NAME", "CLUSTER", *COLUMNS, "GENERATION", "CONNECTED SINCE")
    rows: list[tuple[str, ...]] = [header]
    notes: dict[int, list[str]] = {}
    for proxy in sorted(proxies, key=lambda p: (p.node_id, p.connected_since)):
        cells = [proxy.types[c].state if c in proxy.types else "NOT SENT" for c in COLUMNS]
        waiting = proxy.generation == 0
        rows.append(
            (
                proxy.node_id,
                proxy.cluster,
                *(["WAITING"] * len(COLUMNS) if waiting else cells),
                str(proxy.generation) if not waiting else "-",
                proxy.connected_since.isoformat(timespec="seconds"),
            )
        )
        notes[len(rows) - 1] = [f"  {t} rejected: {m}" for t, m in sorted(proxy.nacks.items())]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        lines.extend(notes.get(index, []))
    return "\n".join(lines) + "\n"


def _labels(**labels: str) -> str:
    body = ",".join(f'{key}="{_escape(value)}"' for key, value in sorted(labels.items()))
    return "{" + body + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metrics_text(
    *,
    sessions: Iterable[Session],
    counters: Counters,
    certificates: Iterable[IssuedCertificate],
    generation: int,
) -> str:
    """Prometheus text exposition (version 0.0.4)."""
    live = list(sessions)
    lines = [
        "# HELP meshd_xds_connected_proxies ADS streams open now.",
        "# TYPE meshd_xds_connected_proxies gauge",
        f"meshd_xds_connected_proxies {len(live)}",
        "# HELP meshd_xds_snapshot_generation Generation of the snapshots being served.",
        "# TYPE meshd_xds_snapshot_generation gauge",
        f"meshd_xds_snapshot_generation {generation}",
    ]
    for metric, table, what in (
        ("pushes", counters.pushes, "Responses sent"),
        ("acks", counters.acks, "Responses accepted"),
        ("nacks", counters.nacks, "Responses rejected"),
    ):
        lines += [
            f"# HELP meshd_xds_{metric}_total {what}, by xDS type.",
            f"# TYPE meshd_xds_{metric}_total counter",
        ]
        lines += [
            f"meshd_xds_{metric}_total{_labels(type=t)} {table.get(t, 0)}"
            for t in sorted(SHORT_NAMES.values())
        ]
    lines += [
        "# HELP meshd_xds_refused_total Requests refused, by reason (identity, secret, type).",
        "# TYPE meshd_xds_refused_total counter",
    ]
    lines += [
        f"meshd_xds_refused_total{_labels(reason=r)} {counters.refused.get(r, 0)}"
        for r in ("identity", "secret", "type")
    ]
    lines += [
        "# HELP meshd_xds_proxy_nacked Whether a proxy's last answer for a type was a NACK.",
        "# TYPE meshd_xds_proxy_nacked gauge",
    ]
    for session in sorted(live, key=lambda s: (s.node_id, s.stream_id)):
        for type_url, state in iter_types(session):
            value = 1 if state.nack is not None else 0
            labels = _labels(node=session.node_id, type=SHORT_NAMES[type_url])
            lines.append(f"meshd_xds_proxy_nacked{labels} {value}")
    lines += [
        "# HELP meshd_xds_certificate_expiry_timestamp_seconds When each served workload "
        "certificate expires (Unix time).",
        "# TYPE meshd_xds_certificate_expiry_timestamp_seconds gauge",
    ]
    for cert in sorted(certificates, key=lambda c: c.identity):
        stamp = int(cert.not_after.timestamp())
        lines.append(
            f"meshd_xds_certificate_expiry_timestamp_seconds{_labels(identity=cert.identity)} "
            f"{stamp}"
        )
    return "\n".join(lines) + "\n"
