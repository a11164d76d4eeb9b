"""`meshd run --target kubernetes`: the Kubernetes target with its preflight, and with
`--leader-elect` the Lease that lets only one replica write.

The elector runs beside the loop on the same event loop; when this replica becomes
leader it asks the source for a pass at once (it may hold a revision the former leader
never applied), and on shutdown it gives the Lease up.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from compiler.diagnostics import Severity
from reconciler.kube.client import Cluster, load_configuration
from reconciler.kube.election import LeaderElector, LeaseConfig
from reconciler.kube.target import CheckedTarget
from reconciler.state import StateStore
from reconciler.targets.kubernetes_command import kubernetes_target

DEFAULT_LEASE = "meshd"


def default_identity() -> str:
    """The pod's name (its hostname in Kubernetes), made unique per process."""
    return f"{socket.gethostname()}_{os.getpid()}"


def lease_namespace(given: str | None) -> str:
    """`--lease-namespace`, else the pod's own namespace (the service account mount),
    else `default`."""
    if given:
        return given
    mounted = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
    with contextlib.suppress(OSError):
        return open(mounted, encoding="utf-8").read().strip() or "default"
    return "default"


@contextlib.asynccontextmanager
async def kubernetes_run_target(
    o: Any, store: StateStore, wake: Callable[[], None]
) -> AsyncIterator[CheckedTarget]:
    fail_on = Severity.WARNING if o["fail_on"] == "warning" else Severity.ERROR
    with kubernetes_target(o, store) as inner:
        preflight = o["preflight"]
        if not o["leader_elect"]:
            yield CheckedTarget(inner, fail_on=fail_on, preflight=preflight)
            return
        loop = asyncio.get_running_loop()
        config = LeaseConfig(
            o["lease_name"] or DEFAULT_LEASE,
            lease_namespace(o["lease_namespace"]),
            o["identity"] or default_identity(),
        )
        cluster = Cluster(load_configuration(o["kubeconfig"], o["context"]))

        def woken(leading: bool) -> None:
            if leading:  # a new leader applies at once, not at the next interval
                loop.call_soon_threadsafe(wake)

        elector = LeaderElector(cluster, config, on_change=woken)
        inner.cluster.fence = elector.ensure_leader  # checked before every write
        await asyncio.to_thread(elector.step)  # a first pass (--once) knows who leads
        stop = threading.Event()
        thread = threading.Thread(target=elector.run, args=(stop,), name="meshd-lease", daemon=True)
        thread.start()
        try:
            yield CheckedTarget(inner, fail_on=fail_on, elector=elector, preflight=preflight)
        finally:
            stop.set()
            await asyncio.to_thread(thread.join, config.retry_period + cluster.retry.timeout)
            cluster.close()
