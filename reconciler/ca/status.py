"""Status of the CA: a human report, the keyless ca-status snapshot, Prometheus gauges.

Everything here is public: fingerprints, subjects, dates, counts. Nothing loads a key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509

from compiler.kinds.mesh.ca_status_format import RootStatus, ca_status_json
from reconciler.ca.consumers import Consumer
from reconciler.ca.rotation import live_leaves, next_gate
from reconciler.ca.state import PHASE_ORDER, LeafRecord
from reconciler.ca.store import KeyStore

ROOT_WARNING = timedelta(days=90)
CA_WARNING = timedelta(days=30)
"""Thresholds: roots warn 90 days before expiry, intermediates and leaves 30 days."""


@dataclass(frozen=True, slots=True)
class CertLine:
    kind: str
    label: str
    root: str
    fingerprint: str
    subject: str
    not_after: datetime
    tags: tuple[str, ...]


def rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _days_left(moment: datetime, now: datetime) -> int:
    return int((moment - now).total_seconds() // 86400)


def certificate_lines(store: KeyStore) -> list[CertLine]:
    from compiler.kinds.mesh.anchors import fingerprint

    state = store.state
    lines: list[CertLine] = []
    for record in state.roots:
        cert = store.root_cert(record.name)
        tags = ["archived"] if record.archived else []
        tags += ["trusted"] if record.name in state.trusted else []
        tags += ["issuer"] if record.name == state.issuer else []
        lines.append(_line("root", record.name, record.name, cert, fingerprint(cert), tags))
        if not record.archived:
            inter = store.intermediate_cert(record.name)
            label = f"{record.name} #{record.intermediate}"
            lines.append(_line("intermediate", label, record.name, inter, fingerprint(inter), []))
    return lines


def _line(
    kind: str, label: str, root: str, cert: x509.Certificate, fp: str, tags: list[str]
) -> CertLine:
    return CertLine(
        kind, label, root, fp, cert.subject.rfc4514_string(), cert.not_valid_after_utc, tuple(tags)
    )


def warnings(store: KeyStore, now: datetime) -> list[str]:
    found: list[str] = []
    for line in certificate_lines(store):
        if "archived" in line.tags:
            continue
        threshold = ROOT_WARNING if line.kind == "root" else CA_WARNING
        left = line.not_after - now
        if left <= timedelta(0):
            found.append(f"{line.kind} {line.label} EXPIRED at {rfc3339(line.not_after)}")
        elif left <= threshold:
            action = (
                "start a root rotation (`meshd ca rotate start`)"
                if line.kind == "root"
                else "it renews automatically within renewBefore; run `meshd ca issue` "
                "or `meshd ca rotate intermediate` to renew now"
            )
            found.append(
                f"{line.kind} {line.label} expires in {_days_left(line.not_after, now)} "
                f"days ({rfc3339(line.not_after)}); {action}"
            )
    for leaf in live_leaves(store.state, now):
        if leaf.not_after - now <= CA_WARNING and leaf.not_after - leaf.issued_at > CA_WARNING:
            found.append(
                f"leaf {leaf.spiffe_id} expires in "
                f"{_days_left(leaf.not_after, now)} days; re-issue it"
            )
    return found


def render_text(
    store: KeyStore, consumers: list[Consumer], now: datetime, *, extra: list[str]
) -> str:
    state = store.state
    out = [
        f"CA state {store.path} (trust domain {state.trust_domain}, {state.key_algorithm}, "
        f"keys {'encrypted' if state.encrypted else 'not encrypted'} at rest)",
        f"evaluated at {rfc3339(now)}; bundle sequence {state.bundle_sequence}; "
        f"issuer {state.issuer}; trusted {', '.join(state.trusted)}",
        "",
    ]
    for line in certificate_lines(store):
        tags = f" [{', '.join(line.tags)}]" if line.tags else ""
        out.append(f"{line.kind} {line.label}{tags}")
        out.append(f"  fingerprint {line.fingerprint}")
        out.append(f"  subject     {line.subject}")
        out.append(
            f"  not after   {rfc3339(line.not_after)} ({_days_left(line.not_after, now)} days left)"
        )
    leaves = live_leaves(state, now)
    per_root = {r.name: sum(1 for leaf in leaves if leaf.root == r.name) for r in state.roots}
    out.append("")
    out.append(
        f"live leaves: {len(leaves)} ("
        + ", ".join(f"{name}: {count}" for name, count in per_root.items())
        + ")"
    )
    rotation = state.rotation
    if rotation is None:
        out.append("rotation: none (start one with `meshd ca rotate start`)")
    else:
        done = " (complete)" if rotation.phase is PHASE_ORDER[-1] else ""
        out.append(
            f"rotation: {rotation.from_root} -> {rotation.to_root}, phase "
            f"{rotation.phase}{done} since {rfc3339(rotation.phase_since)}"
        )
        gate = next_gate(store, consumers, now)
        if gate is not None:
            verdict = "holds" if gate.holds else "not yet"
            out.append(f"  gate to next phase: {gate.description}: {verdict} ({gate.detail})")
        for forced in rotation.forced:
            out.append(f"  forced past: {forced}")
    problems = [*warnings(store, now), *extra]
    if problems:
        out.append("")
        out.extend(f"warning: {p}" for p in problems)
    return "\n".join(out) + "\n"


def _max_after(leaves: list[LeafRecord]) -> str | None:
    return rfc3339(max(leaf.not_after for leaf in leaves)) if leaves else None


def ca_status_snapshot(store: KeyStore, now: datetime) -> dict[str, object]:
    """The keyless snapshot `meshc plan --ca-status FILE` reads; its format is the
    compiler's (`compiler.kinds.mesh.ca_status_format`), so writer and reader cannot drift."""
    leaves = live_leaves(store.state, now)
    roots: list[RootStatus] = []
    for record in store.state.roots:
        mine = [leaf for leaf in leaves if leaf.root == record.name]
        if record.archived and not mine:
            continue
        roots.append(RootStatus(record.fingerprint, len(mine), _max_after(mine)))
    return ca_status_json(roots)


def _labels(**labels: str) -> str:
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + body + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metrics_text(store: KeyStore, now: datetime) -> str:
    """Prometheus exposition text: certificate expiry, bundle sequence, rotation phase."""
    state = store.state
    out = [
        "# HELP meshd_ca_certificate_not_after_timestamp_seconds Expiry of a CA certificate.",
        "# TYPE meshd_ca_certificate_not_after_timestamp_seconds gauge",
    ]
    for line in certificate_lines(store):
        if "archived" in line.tags:
            continue
        labels = _labels(kind=line.kind, root=line.root, fingerprint=line.fingerprint)
        out.append(
            f"meshd_ca_certificate_not_after_timestamp_seconds{labels} "
            f"{int(line.not_after.timestamp())}"
        )
    leaves = live_leaves(state, now)
    for record in state.roots:
        mine = [leaf for leaf in leaves if leaf.root == record.name]
        if mine:
            latest = max(leaf.not_after for leaf in mine)
            labels = _labels(kind="leaf", root=record.name, fingerprint=record.fingerprint)
            out.append(
                f"meshd_ca_certificate_not_after_timestamp_seconds{labels} "
                f"{int(latest.timestamp())}"
            )
    out += [
        "# HELP meshd_ca_live_leaves Live workload certificates per root.",
        "# TYPE meshd_ca_live_leaves gauge",
    ]
    for record in state.roots:
        count = sum(1 for leaf in leaves if leaf.root == record.name)
        out.append(f"meshd_ca_live_leaves{_labels(root=record.name)} {count}")
    out += [
        "# HELP meshd_ca_bundle_sequence SPIFFE bundle sequence (increases on every change).",
        "# TYPE meshd_ca_bundle_sequence gauge",
        f"meshd_ca_bundle_sequence {state.bundle_sequence}",
        "# HELP meshd_ca_rotation_phase 1 for the current root rotation phase, else 0.",
        "# TYPE meshd_ca_rotation_phase gauge",
    ]
    current = state.rotation.phase.value if state.rotation else "none"
    for phase in ("none", *(p.value for p in PHASE_ORDER)):
        out.append(f"meshd_ca_rotation_phase{_labels(phase=phase)} {int(phase == current)}")
    return "\n".join(out) + "\n"
