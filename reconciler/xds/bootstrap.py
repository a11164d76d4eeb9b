"""The Envoy bootstrap that connects a proxy to this control plane.

Only the xDS connection is static: the proxy presents its workload certificate (from files,
since SDS is not reachable before ADS is) and pins the control plane's SPIFFE ID; listeners
and clusters come over ADS. `node.id` and `node.cluster` are both required (Envoy 1.40
refuses ADS without them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from compiler.kinds.rollout.regex import ENVOY_MAX_PROGRAM_SIZE
from reconciler.xds.secrets import CertificateAuthority, to_issued

XDS_CLUSTER = "meshd-xds"
TLS_SOCKET = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
HTTP_OPTIONS = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


@dataclass(frozen=True, slots=True)
class XdsClientFiles:
    """Files the proxy reads at start: its certificate chain, its key (mode 0600), the bundle."""

    certificate_chain: Path
    private_key: Path
    trust_bundle: Path


def write_client_files(
    ca: CertificateAuthority, now: datetime, spiffe_id: str, directory: Path
) -> XdsClientFiles:
    """Issue the proxy's certificate for the xDS connection and write the three files (the
    key readable by the owner only)."""
    issued = to_issued(ca.issue(now, spiffe_id))
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    files = XdsClientFiles(
        directory / "xds-cert.pem", directory / "xds-key.pem", directory / "xds-bundle.pem"
    )
    _write(files.certificate_chain, issued.chain_pem, 0o644)
    _write(files.private_key, issued.key_pem, 0o600)
    _write(files.trust_bundle, ca.bundle_pem(now), 0o644)
    return files


def _write(path: Path, data: bytes, mode: int) -> None:
    """Created with its final mode, so the key is never readable by others, even briefly."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def bootstrap(
    *,
    node_id: str,
    cluster: str,
    xds_address: str,
    xds_port: int,
    control_plane_identity: str,
    files: XdsClientFiles,
    admin_port: int,
    admin_address: str = "127.0.0.1",
    delta: bool = False,
) -> dict[str, Any]:
    """A bootstrap (JSON-ready) for one node; write it with `json.dumps` and pass `-c`.
    `delta` asks for incremental xDS instead of the state of the world."""
    ads = {"ads": {}, "resource_api_version": "V3"}
    return {
        "node": {"id": node_id, "cluster": cluster},
        "admin": {"address": _socket(admin_address, admin_port)},
        "dynamic_resources": {
            "ads_config": {
                "api_type": "DELTA_GRPC" if delta else "GRPC",
                "transport_api_version": "V3",
                "grpc_services": [{"envoy_grpc": {"cluster_name": XDS_CLUSTER}}],
                "set_node_on_first_message_only": True,
            },
            "lds_config": ads,
            "cds_config": ads,
        },
        "static_resources": {
            "clusters": [_xds_cluster(xds_address, xds_port, files, control_plane_identity)]
        },
        "layered_runtime": _runtime(),
    }


def _runtime() -> dict[str, Any]:
    """Envoy's default RE2 limit (100) is far below the one lint allows, which is Istio's
    bootstrap value: a header regex meshc accepts would be NACKed without it. The admin
    layer stays, as in Envoy's default runtime."""
    return {
        "layers": [
            {
                "name": "meshd",
                "static_layer": {"re2.max_program_size.error_level": ENVOY_MAX_PROGRAM_SIZE},
            },
            {"name": "admin", "admin_layer": {}},
        ]
    }


def _socket(address: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": address, "port_value": port}}


def _xds_cluster(
    address: str, port: int, files: XdsClientFiles, control_plane_identity: str
) -> dict[str, Any]:
    return {
        "name": XDS_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "1s",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": HTTP_OPTIONS,
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        },
        "load_assignment": {
            "cluster_name": XDS_CLUSTER,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _socket(address, port)}}]}],
        },
        "transport_socket": {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": TLS_SOCKET,
                "common_tls_context": {
                    "alpn_protocols": ["h2"],
                    "tls_certificates": [
                        {
                            "certificate_chain": {"filename": str(files.certificate_chain)},
                            "private_key": {"filename": str(files.private_key)},
                        }
                    ],
                    "validation_context": {
                        "trusted_ca": {"filename": str(files.trust_bundle)},
                        "match_typed_subject_alt_names": [
                            {"san_type": "URI", "matcher": {"exact": control_plane_identity}}
                        ],
                    },
                },
            },
        },
    }
