"""Who is on the other end of an ADS stream: the SPIFFE ID in the client certificate.

The gRPC server requires a client certificate that chains to the mesh's trust bundle (the
TLS handshake checks the chain); this module reads the one URI SAN of the verified leaf.
The node id the proxy claims is only a claim: the server serves it only when the claimed
node's snapshot runs as this identity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509

from reconciler.xds.secrets import CertificateAuthority, to_bundle, to_issued

PEER_CERTIFICATE = "x509_pem_cert"


@dataclass(frozen=True, slots=True)
class ServerTls:
    """The control plane's own certificate and the bundle client certificates must chain to."""

    certificate_chain: bytes
    private_key: bytes = field(repr=False)
    client_ca: bytes

    def __repr__(self) -> str:
        return f"ServerTls(client_ca_roots={len(to_bundle(self.client_ca).fingerprints)})"


def server_tls_from_ca(ca: CertificateAuthority, now: datetime, spiffe_id: str) -> ServerTls:
    """A certificate for the control plane from the mesh CA, and the bundle as client CA."""
    issued = to_issued(ca.issue(now, spiffe_id))
    return ServerTls(issued.chain_pem, issued.key_pem, ca.bundle_pem(now))


def peer_identity(auth_context: Mapping[str, Sequence[bytes]]) -> str | None:
    """The SPIFFE ID of the verified client certificate, or None without exactly one."""
    certificates = auth_context.get(PEER_CERTIFICATE) or []
    if len(certificates) != 1:
        return None
    try:
        leaf = x509.load_pem_x509_certificate(certificates[0])
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return None
    uris = names.get_values_for_type(x509.UniformResourceIdentifier)
    spiffe = [uri for uri in uris if uri.startswith("spiffe://")]
    return spiffe[0] if len(spiffe) == 1 else None
