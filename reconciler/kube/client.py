"""The cluster as the Kubernetes target sees it: the official client's DynamicClient,
with server-side apply under one field manager, and transient failures retried.

Every call goes through `Cluster._call`, the one place that tells a transient failure
(500/502/503/504, 429, a timeout, a dropped connection, a 409 that is not a field-manager
conflict) from an answer: transient failures are retried a few times with backoff inside
the pass, then raised as `ClusterUnavailable` (the pass fails and the loop backs off);
answers (404, 409 field conflicts, 422) are returned to the caller as `ApiRefusal`.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import DynamicApiError, ResourceNotFoundError
from urllib3.exceptions import HTTPError as TransportError

from reconciler.backoff import backoff_delay
from reconciler.errors import MeshdError

log = logging.getLogger("meshd.kubernetes")

_loaders: Any = k8s_config
_Dynamic: Any = DynamicClient
FIELD_MANAGER = "meshc"
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


class ClusterConfigError(MeshdError):
    code = 2


class ClusterUnavailable(MeshdError):
    """The API server kept failing transiently; the pass fails and the loop backs off."""

    code = 1


@dataclass
class ApiRefusal(Exception):
    """The API server's answer to one object: its status, reason and message."""

    status: int
    reason: str
    message: str
    conflicts: tuple[tuple[str, str], ...] = ()
    """(manager, field) for a server-side apply conflict."""

    def __str__(self) -> str:
        return f"{self.status} {self.reason}: {self.message}"


@dataclass(frozen=True, slots=True)
class Retry:
    attempts: int = 4
    base: float = 0.2
    cap: float = 2.0
    timeout: float = 10.0
    """Seconds one request may take before it counts as a transient failure."""


def load_configuration(kubeconfig: Path | None, context: str | None) -> k8s.Configuration:
    """`--kubeconfig`, else `KUBECONFIG` or ~/.kube/config, else the in-cluster service
    account — the client's own loaders, in kubectl's order."""
    configuration = k8s.Configuration()
    default = Path("~/.kube/config").expanduser()
    files = str(kubeconfig) if kubeconfig is not None else os.environ.get("KUBECONFIG")
    try:
        if files or default.exists():
            _loaders.load_kube_config(
                config_file=files or str(default),
                context=context,
                client_configuration=configuration,
            )
        else:
            _loaders.load_incluster_config(client_configuration=configuration)
    except Exception as exc:  # the loaders raise YAML, config, OS and type errors alike
        where = f"--kubeconfig {kubeconfig}" if kubeconfig else "the Kubernetes configuration"
        raise ClusterConfigError(
            f"{where}: cannot be loaded ({exc}); pass --kubeconfig FILE, set KUBECONFIG, "
            "or run inside a cluster"
        ) from None
    configuration.retries = 0  # retries are ours, counted and backed off (see Retry)
    return configuration


class Cluster:
    """Object-level calls against one API server."""

    def __init__(self, configuration: k8s.Configuration, retry: Retry | None = None) -> None:
        self.retry = retry or Retry()
        self.server = configuration.host
        self._api: Any = k8s.ApiClient(configuration)
        self._dynamic: Any = None
        self._cache = Path(tempfile.gettempdir()) / f"meshd-discovery-{os.getpid()}-{id(self)}.json"
        self.fence: Callable[[], None] = lambda: None
        """Called before every write; raises to forbid it (leader election's fence)."""

    def __repr__(self) -> str:
        return f"Cluster({self.server!r})"

    def close(self) -> None:
        self._api.close()
        self._cache.unlink(missing_ok=True)

    @property
    def dynamic(self) -> Any:
        if self._dynamic is None:
            self._dynamic = self._call(
                "discover the API", lambda: _Dynamic(self._api, cache_file=str(self._cache))
            )
        return self._dynamic

    def resource(self, api_version: str, kind: str) -> Any:
        try:
            return self._call(
                f"discover {kind}.{api_version}",
                lambda: self.dynamic.resources.get(api_version=api_version, kind=kind),
            )
        except ResourceNotFoundError:
            raise ApiRefusal(
                404,
                "NotFound",
                f"the cluster serves no {kind} in {api_version}; install its CRD first",
            ) from None

    def get(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """The live object, or None when there is none."""
        resource = self.resource(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        try:
            return self._json(
                f"read {_name(obj)}",
                lambda: self.dynamic.get(
                    resource,
                    name=meta["name"],
                    namespace=meta.get("namespace"),
                    serialize=False,
                    _request_timeout=self.retry.timeout,
                ),
            )
        except ApiRefusal as refusal:
            if refusal.status == 404:
                return None
            raise

    def apply(self, obj: dict[str, Any], *, dry_run: bool, force: bool) -> dict[str, Any]:
        """Server-side apply under `meshc`; what the server stored (or would store)."""
        resource = self.resource(obj["apiVersion"], obj["kind"])
        if not dry_run:
            self.fence()
        return self._json(
            f"apply {_name(obj)}",
            lambda: self.dynamic.server_side_apply(
                resource,
                body=obj,
                name=obj["metadata"]["name"],
                namespace=obj["metadata"].get("namespace"),
                field_manager=FIELD_MANAGER,
                force_conflicts=True if force else None,
                dry_run="All" if dry_run else None,
                serialize=False,
                _request_timeout=self.retry.timeout,
            ),
        )

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        resource = self.resource(api_version, kind)
        self.fence()
        try:
            self._json(
                f"delete {kind} {namespace}/{name}",
                lambda: self.dynamic.delete(
                    resource,
                    name=name,
                    namespace=namespace or None,
                    serialize=False,
                    _request_timeout=self.retry.timeout,
                ),
            )
        except ApiRefusal as refusal:
            if refusal.status != 404:  # already gone is what a prune wants
                raise

    def list(
        self, api_version: str, kind: str, namespace: str, selector: str
    ) -> list[dict[str, Any]]:
        resource = self.resource(api_version, kind)
        listed = self._json(
            f"list {kind} in {namespace or 'the cluster'}",
            lambda: self.dynamic.get(
                resource,
                namespace=namespace or None,
                label_selector=selector,
                serialize=False,
                _request_timeout=self.retry.timeout,
            ),
        )
        items: list[dict[str, Any]] = listed.get("items") or []
        return items

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        resource = self.resource(obj["apiVersion"], obj["kind"])
        self.fence()
        return self._json(
            f"create {_name(obj)}",
            lambda: self.dynamic.create(
                resource,
                body=obj,
                namespace=obj["metadata"].get("namespace"),
                field_manager=FIELD_MANAGER,
                serialize=False,
                _request_timeout=self.retry.timeout,
            ),
        )

    def _json(self, what: str, call: Callable[[], Any]) -> dict[str, Any]:
        response = self._call(what, call)
        decoded: dict[str, Any] = json.loads(response.data or b"{}")
        return decoded

    def _call(self, what: str, call: Callable[[], Any]) -> Any:
        """`call`, retried on transient failures; an answer is raised as `ApiRefusal`."""
        last = ""
        for attempt in range(self.retry.attempts):
            if attempt:
                time.sleep(backoff_delay(attempt, base=self.retry.base, cap=self.retry.cap))
            try:
                return call()
            except (DynamicApiError, ApiException) as exc:
                refusal = _refusal(exc)
                if not _transient(refusal):
                    raise refusal from None
                last = str(refusal)
            except (TransportError, OSError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            log.info("%s: %s (attempt %d of %d)", what, last, attempt + 1, self.retry.attempts)
        raise ClusterUnavailable(
            f"{self.server}: cannot {what} ({last}) after {self.retry.attempts} attempts; "
            "the pass is retried with backoff"
        )


def _transient(refusal: ApiRefusal) -> bool:
    if refusal.status in TRANSIENT_STATUSES:
        return True
    return refusal.status == 409 and refusal.reason == "Conflict" and not refusal.conflicts


def _refusal(exc: DynamicApiError | ApiException) -> ApiRefusal:
    status = int(getattr(exc, "status", 0) or 0)
    body: Any = getattr(exc, "body", None)
    try:
        decoded = json.loads(body) if body else {}
    except (TypeError, ValueError):
        decoded = {}
    if not isinstance(decoded, dict):
        decoded = {}
    causes = (decoded.get("details") or {}).get("causes") or []
    conflicts = tuple(
        (_quoted(str(cause.get("message", ""))), str(cause.get("field", "")))
        for cause in causes
        if cause.get("reason") == "FieldManagerConflict"
    )
    return ApiRefusal(
        status,
        str(decoded.get("reason") or getattr(exc, "reason", "") or "Error"),
        str(decoded.get("message") or getattr(exc, "reason", "") or "no message"),
        conflicts,
    )


def _quoted(text: str) -> str:
    """The manager in `conflict with "kubectl-edit" using v1` (the API server's wording)."""
    parts = text.split('"')
    return parts[1] if len(parts) >= 3 else text


def _name(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj['kind']} {where}{meta['name']}"
