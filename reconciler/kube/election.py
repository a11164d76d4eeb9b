"""Leader election on a `coordination.k8s.io/v1` Lease, so two replicas never both write.

Every replica compiles and serves xDS; only the one holding the Lease writes to
Kubernetes. The algorithm is client-go's `leaderelection`, with its safety argument:

- the Lease names its holder and how long a claim lasts (`leaseDurationSeconds`); the
  holder renews `renewTime` every `retry_period`;
- a candidate judges expiry on its *own* monotonic clock, from when it last saw the
  record change (never by comparing its wall clock with the holder's), and takes the
  Lease only once the record has stood still for a whole lease duration;
- every write carries the `resourceVersion` it read, so of two candidates racing for an
  expired Lease the API server lets one through and answers the other 409 Conflict: the
  loser is never leader;
- a leader that cannot renew within `renew_deadline` (shorter than the lease duration)
  stops writing before anyone else may take over; a 409 on its own renewal (someone took
  the Lease) stops it at once.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import DynamicApiError
from urllib3.exceptions import HTTPError as TransportError

from reconciler.errors import MeshdError
from reconciler.kube.client import ApiRefusal, Cluster, ClusterUnavailable

log = logging.getLogger("meshd.election")

LEASE_API = "coordination.k8s.io/v1"


class NotLeader(MeshdError):
    """A write attempted by a replica that does not hold the Lease (or no longer may)."""

    code = 1


@dataclass(frozen=True, slots=True)
class LeaseConfig:
    name: str
    namespace: str
    identity: str
    duration: float = 15.0
    """`leaseDurationSeconds` (whole seconds on the wire)."""
    renew_deadline: float = 10.0
    """A leader that has not renewed for this long stops writing (< duration)."""
    retry_period: float = 2.0
    """How often a candidate tries to take, and the leader to renew, the Lease."""

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.duration:
            raise MeshdError(
                "leader election: need 0 < retry period < renew deadline < lease duration "
                f"(got {self.retry_period}, {self.renew_deadline}, {self.duration})"
            )


@dataclass(frozen=True, slots=True)
class Observed:
    """The Lease as last read, and when (on this replica's monotonic clock) it changed."""

    holder: str
    renew_time: str
    transitions: int
    acquire_time: str
    resource_version: str
    changed_at: float


class LeaderElector:
    """One candidate. `step()` is one attempt (take or renew); `run()` repeats it."""

    def __init__(
        self,
        cluster: Cluster,
        config: LeaseConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_change: Callable[[bool], None] = lambda leading: None,
    ) -> None:
        self.cluster = cluster
        self.config = config
        self.clock = clock
        self.wall = wall
        self.on_change = on_change
        self.observed: Observed | None = None
        self._renewed_at: float | None = None
        """When this replica last wrote the Lease as its holder; None: not leader."""
        self.transitions = 0
        """How many times this replica became leader."""

    def __repr__(self) -> str:
        return (
            f"LeaderElector({self.config.namespace}/{self.config.name}, {self.config.identity!r})"
        )

    @property
    def is_leader(self) -> bool:
        """Holds the Lease and renewed it within the renew deadline."""
        renewed = self._renewed_at
        return renewed is not None and self.clock() - renewed < self.config.renew_deadline

    def ensure_leader(self) -> None:
        """Raise `NotLeader` unless this replica may write now (checked before each write)."""
        if not self.is_leader:
            holder = self.observed.holder if self.observed else ""
            raise NotLeader(
                f"not the leader of Lease {self.config.namespace}/{self.config.name}"
                + (f" ({holder} holds it)" if holder else "")
                + "; this replica compiles and serves xDS, and writes nothing to Kubernetes"
            )

    # -- one attempt ---------------------------------------------------------------------

    def step(self) -> bool:
        """Take or renew the Lease once; whether this replica leads afterwards. A failed
        call is not fatal: the leader keeps leading until its renew deadline passes."""
        was = self.is_leader
        try:
            self._attempt()
        except (ApiRefusal, ClusterUnavailable, TransportError, OSError) as exc:
            log.info("lease %s: %s", self.config.name, exc)
        leading = self.is_leader
        if leading != was:
            if leading:
                self.transitions += 1
            log.info(
                "%s %s the lease %s/%s",
                self.config.identity,
                "took" if leading else "lost",
                self.config.namespace,
                self.config.name,
            )
            self.on_change(leading)
        return leading

    def _attempt(self) -> None:
        now = self.clock()
        live = self._read()
        if live is None:
            if self._write(self._record(None), create=True):
                self._renewed_at = now
            return
        seen = self._observe(live, now)
        mine = seen.holder == self.config.identity
        if seen.holder and not mine and now - seen.changed_at < self.config.duration:
            self._renewed_at = None  # someone else holds a live claim
            return
        if self._write(self._record(live), create=False):
            self._renewed_at = now
        elif mine or self._renewed_at is not None:
            self._renewed_at = None  # 409: another candidate took the Lease

    def _observe(self, live: dict[str, Any], now: float) -> Observed:
        spec = live.get("spec") or {}
        seen = Observed(
            holder=str(spec.get("holderIdentity") or ""),
            renew_time=str(spec.get("renewTime") or ""),
            transitions=int(spec.get("leaseTransitions") or 0),
            acquire_time=str(spec.get("acquireTime") or ""),
            resource_version=str(live["metadata"].get("resourceVersion", "")),
            changed_at=now,
        )
        before = self.observed
        if before is not None and (before.holder, before.renew_time) == (
            seen.holder,
            seen.renew_time,
        ):
            seen = Observed(
                seen.holder,
                seen.renew_time,
                seen.transitions,
                seen.acquire_time,
                seen.resource_version,
                before.changed_at,
            )
        self.observed = seen
        return seen

    def _record(self, live: dict[str, Any] | None) -> dict[str, Any]:
        stamp = self.wall().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        seen = self.observed if live is not None else None
        keeps = seen is not None and seen.holder == self.config.identity
        spec = {
            "holderIdentity": self.config.identity,
            "leaseDurationSeconds": max(1, round(self.config.duration)),
            "acquireTime": seen.acquire_time if keeps and seen else stamp,
            "renewTime": stamp,
            "leaseTransitions": (seen.transitions + (0 if keeps else 1)) if seen else 0,
        }
        metadata: dict[str, Any] = {"name": self.config.name, "namespace": self.config.namespace}
        if seen is not None:
            metadata["resourceVersion"] = seen.resource_version
        return {"apiVersion": LEASE_API, "kind": "Lease", "metadata": metadata, "spec": spec}

    # -- the API calls (409 is an answer here, never retried) ------------------------------

    def _read(self) -> dict[str, Any] | None:
        stub = {
            "apiVersion": LEASE_API,
            "kind": "Lease",
            "metadata": {"name": self.config.name, "namespace": self.config.namespace},
        }
        return self.cluster.get(stub)

    def _write(self, lease: dict[str, Any], *, create: bool) -> bool:
        """Create or replace the Lease; False when another candidate got there first."""
        resource = self.cluster.resource(LEASE_API, "Lease")
        dynamic = self.cluster.dynamic
        timeout = self.cluster.retry.timeout
        try:
            if create:
                dynamic.create(
                    resource,
                    body=lease,
                    namespace=self.config.namespace,
                    serialize=False,
                    _request_timeout=timeout,
                )
            else:
                dynamic.replace(
                    resource,
                    body=lease,
                    name=self.config.name,
                    namespace=self.config.namespace,
                    serialize=False,
                    _request_timeout=timeout,
                )
        except (DynamicApiError, ApiException) as exc:
            status = int(getattr(exc, "status", 0) or 0)
            if status == 409:
                return False
            raise ApiRefusal(status, "Error", _message(exc)) from None
        return True

    # -- the loop --------------------------------------------------------------------------

    def run(self, stop: threading.Event, *, release: bool = True) -> None:
        """Try every `retry_period` until `stop`; then give the Lease up if held (so the
        next leader need not wait out the lease duration). Meant for a thread of its own:
        a long compile on the event loop must not delay a renewal."""
        while not stop.is_set():
            self.step()
            stop.wait(self.config.retry_period)
        if release:
            self.release()

    def release(self) -> None:
        """Empty the holder (with our resourceVersion: a Lease someone else took stays)."""
        if not self.is_leader:
            return
        try:
            live = self._read()
            if live is not None:
                self._observe(live, self.clock())
                lease = self._record(live)
                lease["spec"]["holderIdentity"] = ""
                self._write(lease, create=False)
        except (ApiRefusal, ClusterUnavailable, TransportError, OSError) as exc:
            log.info("lease %s: not released (%s)", self.config.name, exc)
        self._renewed_at = None
        self.on_change(False)


def _message(exc: Exception) -> str:
    body: Any = getattr(exc, "body", None)
    try:
        decoded = json.loads(body) if body else {}
    except (TypeError, ValueError):
        decoded = {}
    if isinstance(decoded, dict) and decoded.get("message"):
        return str(decoded["message"])
    return str(getattr(exc, "reason", "") or type(exc).__name__)
