"""SDS: the secrets a node may fetch, by name only, and the TLS contexts that use them.

The compiler never holds a key: a snapshot names `default` (the node's own certificate)
and `ROOTCA` (the mesh's trust bundle), and the xds target fills both from the key store
for that node alone. Every TLS context here takes its certificate and its validation
context from those names over the node's ADS stream, so a rotation is an SDS push and
never a listener or cluster change.
"""

from __future__ import annotations

from collections.abc import Mapping

from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2, tls_pb2
from envoy.type.matcher.v3 import string_pb2
from google.protobuf import wrappers_pb2

from compiler.lower.envoy.common import MeshSettings, ads, pack
from compiler.lower.envoy.snapshot import TRUST_BUNDLE, WORKLOAD_CERTIFICATE, SecretRef

TLS_SOCKET = "envoy.transport_sockets.tls"

SYSTEM_ROOTS = "/etc/ssl/certs/ca-certificates.crt"
"""The host's public roots, which TLS origination to an External verifies against
(Istio's `credentialName: system`)."""


def node_secrets(identity: str, settings: MeshSettings) -> Mapping[str, SecretRef]:
    """The SDS names a node may fetch and what each stands for."""
    return {
        WORKLOAD_CERTIFICATE: SecretRef("certificate", identity),
        TRUST_BUNDLE: SecretRef("trust-bundle", settings.trust_domain),
    }


def _sds(name: str) -> secret_pb2.SdsSecretConfig:
    return secret_pb2.SdsSecretConfig(name=name, sds_config=ads())


def _mesh_context(peer: string_pb2.StringMatcher) -> tls_pb2.CommonTlsContext:
    """The node's certificate, and the trust bundle with the peer's URI SAN checked."""
    san = common_pb2.SubjectAltNameMatcher(
        san_type=common_pb2.SubjectAltNameMatcher.URI, matcher=peer
    )
    return tls_pb2.CommonTlsContext(
        tls_params=common_pb2.TlsParameters(
            tls_minimum_protocol_version=common_pb2.TlsParameters.TLSv1_2
        ),
        tls_certificate_sds_secret_configs=[_sds(WORKLOAD_CERTIFICATE)],
        combined_validation_context=tls_pb2.CommonTlsContext.CombinedCertificateValidationContext(
            default_validation_context=common_pb2.CertificateValidationContext(
                match_typed_subject_alt_names=[san]
            ),
            validation_context_sds_secret_config=_sds(TRUST_BUNDLE),
        ),
    )


def downstream_mtls(settings: MeshSettings, *, alpn: tuple[str, ...]) -> base_pb2.TransportSocket:
    """Inbound: a client certificate is required, chains to the trust bundle and names a
    SPIFFE identity of the mesh's trust domain (who exactly is RBAC's question)."""
    prefix = string_pb2.StringMatcher(prefix=f"spiffe://{settings.trust_domain}/")
    context = _mesh_context(prefix)
    context.alpn_protocols.extend(alpn)
    tls = tls_pb2.DownstreamTlsContext(
        common_tls_context=context,
        require_client_certificate=wrappers_pb2.BoolValue(value=True),
    )
    return base_pb2.TransportSocket(name=TLS_SOCKET, typed_config=pack(tls))


def upstream_mtls(
    peer_identity: str, sni: str, *, alpn: tuple[str, ...]
) -> base_pb2.TransportSocket:
    """Outbound to a mesh service: present the node's certificate and accept only the
    destination's own SPIFFE ID (a workload holding another identity cannot answer)."""
    context = _mesh_context(string_pb2.StringMatcher(exact=peer_identity))
    context.alpn_protocols.extend(alpn)
    tls = tls_pb2.UpstreamTlsContext(common_tls_context=context, sni=sni)
    return base_pb2.TransportSocket(name=TLS_SOCKET, typed_config=pack(tls))


def upstream_origination(host: str, *, alpn: tuple[str, ...]) -> base_pb2.TransportSocket:
    """TLS originated to an External (`https`): the host's public certificate, checked
    against the host's public roots and its DNS name."""
    san = common_pb2.SubjectAltNameMatcher(
        san_type=common_pb2.SubjectAltNameMatcher.DNS,
        matcher=string_pb2.StringMatcher(exact=host),
    )
    context = tls_pb2.CommonTlsContext(
        validation_context=common_pb2.CertificateValidationContext(
            trusted_ca=base_pb2.DataSource(filename=SYSTEM_ROOTS),
            match_typed_subject_alt_names=[san],
        ),
        alpn_protocols=list(alpn),
    )
    tls = tls_pb2.UpstreamTlsContext(common_tls_context=context, sni=host)
    return base_pb2.TransportSocket(name=TLS_SOCKET, typed_config=pack(tls))
