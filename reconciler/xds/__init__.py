"""The xds target: the embedded Envoy control plane (ADS with SDS over mutual TLS)."""

from reconciler.xds.auth import ServerTls, server_tls_from_ca
from reconciler.xds.bootstrap import XdsClientFiles, bootstrap, write_client_files
from reconciler.xds.consumer import XdsConsumer
from reconciler.xds.server import Convergence, XdsServer, start
from reconciler.xds.status import ProxyStatus, status_table

__all__ = [
    "Convergence",
    "ProxyStatus",
    "ServerTls",
    "XdsClientFiles",
    "XdsConsumer",
    "XdsServer",
    "bootstrap",
    "server_tls_from_ca",
    "start",
    "status_table",
    "write_client_files",
]
