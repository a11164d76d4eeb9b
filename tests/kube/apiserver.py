"""An in-process Kubernetes API stand-in, built on PyPI `kmock`, served over real HTTP.

There is no kube-apiserver to install here, so the tests run the official `kubernetes`
client (DynamicClient, over HTTP) against `kmock.KubernetesEmulator` extended with what
the reconciler relies on and the stock emulator lacks: resourceVersion, uid, generation
and creationTimestamp; 201 on create; label selectors and `kind`/`apiVersion` on lists;
server-side apply (create if missing, per-manager field ownership, conflicts, `force`);
dry runs that never mutate; optimistic concurrency on PUT; merge patches; namespaces that
must exist; watches from a resourceVersion; and injected faults. kmock keeps serving the
discovery documents (`/api`, `/apis`, `/apis/<group>/<version>`) from the declared
resources. What it still does not emulate is listed in docs/kubernetes.md.

`StandIn` runs it on a thread with its own event loop, so synchronous code (the target,
the tests) talks to it like to a cluster.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp.web
import kmock

from tests.kube.fields import (
    MISSING,
    SYSTEM_METADATA,
    Path,
    del_path,
    dotted,
    fields,
    fields_v1,
    get_path,
    set_path,
)


@dataclass(frozen=True)
class Kind:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    writable: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


KINDS = (
    Kind("", "v1", "namespaces", "Namespace", namespaced=False),
    Kind("", "v1", "services", "Service"),
    Kind("", "v1", "secrets", "Secret"),
    Kind("", "v1", "events", "Event"),
    Kind("", "v1", "serviceaccounts", "ServiceAccount"),
    Kind("", "v1", "pods", "Pod"),
    Kind("apps", "v1", "deployments", "Deployment"),
    Kind("coordination.k8s.io", "v1", "leases", "Lease"),
    Kind("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy"),
    Kind("networking.istio.io", "v1", "virtualservices", "VirtualService"),
    Kind("networking.istio.io", "v1", "destinationrules", "DestinationRule"),
    Kind("networking.istio.io", "v1", "serviceentries", "ServiceEntry"),
    Kind("networking.istio.io", "v1", "sidecars", "Sidecar"),
    Kind("networking.istio.io", "v1", "gateways", "Gateway"),
    Kind("security.istio.io", "v1", "authorizationpolicies", "AuthorizationPolicy"),
    Kind("security.istio.io", "v1", "peerauthentications", "PeerAuthentication"),
    Kind("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute"),
    Kind("gateway.networking.k8s.io", "v1", "gateways", "Gateway"),
    Kind(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        namespaced=False,
        writable=False,
    ),
)
WRITE_VERBS = ("create", "update", "patch", "delete")
FAULT_REASONS = {409: "Conflict", 429: "TooManyRequests", 503: "ServiceUnavailable"}
NAMESPACE_PATH = re.compile(r"^/api/v1/namespaces(?:/([^/]+))?/?$")


@dataclass
class Fault:
    """One injected fault: matched against a request, used `times` times."""

    method: str | None = None
    plural: str | None = None
    name: str | None = None
    dry_run: bool | None = None
    watch: bool | None = None
    status: int = 0
    """Answer with this status (500, 503, 409) instead of serving the request."""
    delay: float = 0.0
    """Sleep this long first (a slow server: the client's timeout fires)."""
    drop_after: int | None = None
    """A watch: close the stream after this many events."""
    times: int = 1
    hits: int = 0

    def matches(self, request: kmock.Request) -> bool:
        resource = request.resource
        return (
            (self.method is None or request.method.upper() == self.method)
            and (self.plural is None or (resource is not None and resource.plural == self.plural))
            and (self.name is None or request.name == self.name)
            and (self.dry_run is None or (request.params.get("dryRun") == "All") == self.dry_run)
            and (self.watch is None or (request.params.get("watch") == "true") == self.watch)
        )


@dataclass
class Stored:
    obj: dict[str, Any]
    owners: dict[str, tuple[str, set[Path]]] = field(default_factory=dict)
    """manager → (operation: Apply | Update, the paths it owns)."""


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, causes: list[Any] | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.causes = code, reason, message, causes or []


class MeshcEmulator(kmock.KubernetesEmulator):
    """kmock's emulator, with the API-server semantics the reconciler relies on."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.kinds = {(k.group, k.version, k.plural): k for k in KINDS}
        for kind in KINDS:
            verbs = {"get", "list", "watch"} | (set(WRITE_VERBS) if kind.writable else set())
            self.resources[f"{kind.group}/{kind.version}/{kind.plural}"] = kmock.ResourceInfo(
                kind=kind.kind, namespaced=kind.namespaced, verbs=verbs, singular=kind.kind.lower()
            )
        self.store: dict[tuple[Kind, str, str], Stored] = {}
        self.log: list[tuple[int, str, Kind, dict[str, Any]]] = []
        self.revision = 100
        self.faults: list[Fault] = []
        self.guard = threading.Lock()
        self.changed: asyncio.Condition | None = None

    # -- the request path --------------------------------------------------------------

    async def __call__(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        """kmock's path parser reads `/api/v1/namespaces[/NAME]` as a namespace (and
        fails on the bare list): the Namespace resource is parsed here instead."""
        found = NAMESPACE_PATH.match(raw.path)
        if found is None:
            return await super().__call__(raw)
        body = await raw.read()
        request = kmock.Request(
            method=raw.method,
            url=raw.url,
            params=dict(raw.query),
            headers=dict(raw.headers),
            body=body,
            data=json.loads(body) if body else None,
            resource=kmock.resource("", "v1", "namespaces"),
            name=found[1],
            raw_request=raw,
        )
        self._requests.append(request)
        return await self._handle(request)

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        fault = self._take_fault(request)
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
        if fault is not None and fault.status:
            reason = FAULT_REASONS.get(fault.status, "InternalError")
            return _status(ApiError(fault.status, reason, f"injected fault: {reason}"))
        resource = request.resource
        if resource is None or resource.plural is None:
            return await kmock.RawHandler._handle(self, request)  # discovery, by kmock
        kind = self.kinds.get((resource.group or "", resource.version or "", resource.plural))
        if kind is None:
            return _status(ApiError(404, "NotFound", f"the server could not find {resource}"))
        try:
            if request.params.get("watch") == "true":
                return await self._watch(request, kind, fault)
            code, body = self._serve(request, kind)
        except ApiError as exc:
            return _status(exc)
        if self.changed is not None:
            async with self.changed:
                self.changed.notify_all()
        return aiohttp.web.json_response(body, status=code)

    def _take_fault(self, request: kmock.Request) -> Fault | None:
        with self.guard:
            for fault in self.faults:
                if fault.hits < fault.times and fault.matches(request):
                    fault.hits += 1
                    return fault
        return None

    def _serve(self, request: kmock.Request, kind: Kind) -> tuple[int, dict[str, Any]]:
        method = request.method.upper()
        namespace = request.namespace or ""
        dry = request.params.get("dryRun") == "All"
        if method != "GET" and not kind.writable:
            raise ApiError(405, "MethodNotAllowed", f"{kind.plural} are read-only here")
        with self.guard:
            if method == "GET" and request.name is None:
                return 200, self._list(kind, namespace, request.params.get("labelSelector"))
            if method == "GET":
                return 200, self._render(self._get(kind, namespace, request.name))
            if method == "POST":
                return self._create(kind, namespace, request, dry)
            assert request.name is not None
            if method == "DELETE":
                return self._delete(kind, namespace, request.name, dry)
            content = request.headers.get("Content-Type", "").split(";")[0]
            if method == "PATCH" and content == "application/apply-patch+yaml":
                return self._apply(kind, namespace, request, dry)
            if method == "PATCH":
                return self._patch(kind, namespace, request, content, dry)
            if method == "PUT":
                return self._replace(kind, namespace, request, dry)
        raise ApiError(405, "MethodNotAllowed", f"{method} is not served")

    # -- reads ---------------------------------------------------------------------------

    def _get(self, kind: Kind, namespace: str, name: str | None) -> Stored:
        stored = self.store.get((kind, namespace, name or ""))
        if stored is None:
            raise ApiError(404, "NotFound", f'{kind.plural} "{name}" not found')
        return stored

    def _list(self, kind: Kind, namespace: str, selector: str | None) -> dict[str, Any]:
        match = label_matcher(selector or "")
        items = [
            self._render(stored)
            for (k, ns, _), stored in sorted(self.store.items(), key=lambda kv: kv[0][1:])
            if k == kind and (not namespace or ns == namespace)
            if match(stored.obj["metadata"].get("labels") or {})
        ]
        return {
            "apiVersion": kind.api_version,
            "kind": f"{kind.kind}List",
            "metadata": {"resourceVersion": str(self.revision)},
            "items": items,
        }

    def _render(self, stored: Stored) -> dict[str, Any]:
        obj = copy.deepcopy(stored.obj)
        obj["metadata"]["managedFields"] = [
            {
                "manager": manager,
                "operation": operation,
                "apiVersion": obj["apiVersion"],
                "fieldsType": "FieldsV1",
                "fieldsV1": fields_v1(paths),
            }
            for manager, (operation, paths) in sorted(stored.owners.items())
        ]
        return obj

    # -- writes --------------------------------------------------------------------------

    def _check_namespace(self, kind: Kind, namespace: str) -> None:
        if kind.namespaced and (KINDS[0], "", namespace) not in self.store:
            raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found')

    def _create(
        self, kind: Kind, namespace: str, request: kmock.Request, dry: bool
    ) -> tuple[int, dict[str, Any]]:
        body = copy.deepcopy(request.data or {})
        meta = body.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + secrets.token_hex(3)
        name = meta.get("name")
        if not name:
            raise ApiError(422, "Invalid", "metadata.name: Required value")
        self._check_namespace(kind, namespace)
        if (kind, namespace, name) in self.store:
            raise ApiError(409, "AlreadyExists", f'{kind.plural} "{name}" already exists')
        manager = _manager(request)
        stored = Stored(body, {manager: ("Update", set(fields(body)))})
        return 201, self._commit(kind, namespace, name, None, stored, dry)

    def _apply(
        self, kind: Kind, namespace: str, request: kmock.Request, dry: bool
    ) -> tuple[int, dict[str, Any]]:
        manager = request.params.get("fieldManager")
        if not manager:
            raise ApiError(422, "Invalid", "fieldManager: Required value for apply")
        body = copy.deepcopy(request.data or {})
        name = request.name or ""
        if body.get("metadata", {}).get("name", name) != name:
            raise ApiError(400, "BadRequest", "the name of the object does not match the URL")
        self._check_namespace(kind, namespace)
        live = self.store.get((kind, namespace, name))
        applied = fields(body)
        if live is None:
            body.setdefault("metadata", {}).update(name=name)
            if kind.namespaced:
                body["metadata"]["namespace"] = namespace
            stored = Stored(body, {manager: ("Apply", set(applied))})
            return 201, self._commit(kind, namespace, name, None, stored, dry)
        owners = {m: (op, set(paths)) for m, (op, paths) in live.owners.items()}
        conflicts = [
            (other, path)
            for path, value in applied.items()
            for other, (_, paths) in owners.items()
            if other != manager and path in paths and get_path(live.obj, path) != value
        ]
        if conflicts and request.params.get("force") != "true":
            raise _conflict(conflicts)
        for other, path in conflicts:
            owners[other][1].discard(path)
        obj = copy.deepcopy(live.obj)
        previous = owners.get(manager, ("Apply", set()))[1]
        for path in previous - set(applied):
            if not any(path in paths for m, (_, paths) in owners.items() if m != manager):
                del_path(obj, path)
        for path, value in applied.items():
            set_path(obj, path, value)
        owners[manager] = ("Apply", set(applied))
        stored = Stored(obj, {m: entry for m, entry in owners.items() if entry[1]})
        return 200, self._commit(kind, namespace, name, live, stored, dry)

    def _patch(
        self, kind: Kind, namespace: str, request: kmock.Request, content: str, dry: bool
    ) -> tuple[int, dict[str, Any]]:
        if content not in (
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
        ):
            raise ApiError(415, "UnsupportedMediaType", f"{content} is not served")
        live = self._get(kind, namespace, request.name)
        patch = request.data or {}
        wanted = patch.get("metadata", {}).get("resourceVersion")
        if wanted is not None and wanted != live.obj["metadata"]["resourceVersion"]:
            raise _stale(kind, request.name)
        obj = _merge(copy.deepcopy(live.obj), patch)
        return 200, self._update(kind, namespace, live, obj, _manager(request), dry)

    def _replace(
        self, kind: Kind, namespace: str, request: kmock.Request, dry: bool
    ) -> tuple[int, dict[str, Any]]:
        live = self._get(kind, namespace, request.name)
        obj = copy.deepcopy(request.data or {})
        wanted = obj.get("metadata", {}).get("resourceVersion")
        if not wanted:
            raise ApiError(422, "Invalid", "metadata.resourceVersion: must be specified")
        if wanted != live.obj["metadata"]["resourceVersion"]:
            raise _stale(kind, request.name)
        return 200, self._update(kind, namespace, live, obj, _manager(request), dry)

    def _update(
        self,
        kind: Kind,
        namespace: str,
        live: Stored,
        obj: dict[str, Any],
        manager: str,
        dry: bool,
    ) -> dict[str, Any]:
        """An Update operation: the manager takes over every field it changed."""
        before, after = fields(live.obj), fields(obj)
        changed = {
            p
            for p in before.keys() | after.keys()
            if before.get(p, MISSING) != after.get(p, MISSING)
        }
        owners = {m: (op, paths - changed) for m, (op, paths) in live.owners.items()}
        mine = owners.get(manager, ("Update", set()))
        owners[manager] = (mine[0], mine[1] | (changed & after.keys()))
        stored = Stored(obj, {m: entry for m, entry in owners.items() if entry[1]})
        name = live.obj["metadata"]["name"]
        return self._commit(kind, namespace, name, live, stored, dry)

    def _delete(
        self, kind: Kind, namespace: str, name: str, dry: bool
    ) -> tuple[int, dict[str, Any]]:
        stored = self._get(kind, namespace, name)
        if not dry:
            del self.store[(kind, namespace, name)]
            self.revision += 1
            self.log.append((self.revision, "DELETED", kind, self._render(stored)))
        return 200, {"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 200}

    def _commit(
        self,
        kind: Kind,
        namespace: str,
        name: str,
        live: Stored | None,
        new: Stored,
        dry: bool,
    ) -> dict[str, Any]:
        """Stamp the system metadata; store unless dry; a no-op keeps its resourceVersion."""
        meta = new.obj.setdefault("metadata", {})
        for key in SYSTEM_METADATA:
            meta.pop(key, None)
        meta["name"] = name
        if kind.namespaced:
            meta["namespace"] = namespace
        new.obj["apiVersion"], new.obj["kind"] = kind.api_version, kind.kind
        if live is not None:
            for key in ("uid", "creationTimestamp", "resourceVersion", "generation"):
                meta[key] = live.obj["metadata"][key]
            same_spec = _content(live.obj) == _content(new.obj)
            if same_spec and live.obj["metadata"] == meta and live.owners == new.owners:
                return self._render(live)
            if not same_spec:
                meta["generation"] = live.obj["metadata"]["generation"] + 1
        else:
            meta.update(
                uid=str(uuid.uuid4()),
                creationTimestamp=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                generation=1,
            )
        meta["resourceVersion"] = str(self.revision + 1)
        if dry:
            return self._render(new)
        self.revision += 1
        self.store[(kind, namespace, name)] = new
        self.log.append(
            (self.revision, "ADDED" if live is None else "MODIFIED", kind, self._render(new))
        )
        return self._render(new)

    # -- watch ---------------------------------------------------------------------------

    async def _watch(
        self, request: kmock.Request, kind: Kind, fault: Fault | None
    ) -> aiohttp.web.StreamResponse:
        namespace = request.namespace or ""
        match = label_matcher(request.params.get("labelSelector") or "")
        since = int(request.params.get("resourceVersion") or 0)
        deadline = time.monotonic() + float(request.params.get("timeoutSeconds") or 30)
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
        raw = request._raw_request
        assert raw is not None
        await response.prepare(raw)
        if self.changed is None:
            self.changed = asyncio.Condition()
        with self.guard:
            if since:
                backlog = [
                    (rv, typ, obj) for rv, typ, k, obj in self.log if k == kind and rv > since
                ]
            else:
                backlog = [
                    (self.revision, "ADDED", self._render(s))
                    for (k, _, _), s in self.store.items()
                    if k == kind
                ]
                since = self.revision
        sent = 0
        while time.monotonic() < deadline:
            for rv, typ, obj in backlog:
                since = max(since, rv)
                meta = obj["metadata"]
                if namespace and meta.get("namespace") != namespace:
                    continue
                if not match(meta.get("labels") or {}):
                    continue
                if fault is not None and fault.drop_after is not None and sent >= fault.drop_after:
                    if raw.transport is not None:
                        raw.transport.close()
                    return response
                await response.write(json.dumps({"type": typ, "object": obj}).encode() + b"\n")
                sent += 1
            async with self.changed:
                try:
                    await asyncio.wait_for(
                        self.changed.wait(), max(0.0, deadline - time.monotonic())
                    )
                except TimeoutError:
                    break
            with self.guard:
                backlog = [
                    (rv, typ, obj) for rv, typ, k, obj in self.log if k == kind and rv > since
                ]
        await response.write_eof()
        return response


def _content(obj: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in obj.items() if key not in ("metadata", "status")}


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (strategic merge is served as this: a documented gap)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = _merge(target.get(key), value)
    return target


def _manager(request: kmock.Request) -> str:
    agent = request.headers.get("User-Agent", "unknown").split("/")[0]
    return request.params.get("fieldManager") or agent or "unknown"


def _conflict(conflicts: list[tuple[str, Path]]) -> ApiError:
    causes = [
        {"reason": "FieldManagerConflict", "message": f'conflict with "{m}"', "field": dotted(p)}
        for m, p in conflicts
    ]
    lines = "\n".join(f'- conflict with "{m}": {dotted(p)}' for m, p in conflicts)
    return ApiError(
        409, "Conflict", f"Apply failed with {len(conflicts)} conflict(s):\n{lines}", causes
    )


def _stale(kind: Kind, name: str | None) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {kind.plural} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
    )


def _status(exc: ApiError) -> aiohttp.web.Response:
    body = {
        "apiVersion": "v1",
        "kind": "Status",
        "metadata": {},
        "status": "Failure",
        "code": exc.code,
        "reason": exc.reason,
        "message": exc.message,
        "details": {"causes": exc.causes} if exc.causes else {},
    }
    return aiohttp.web.json_response(body, status=exc.code)


def label_matcher(selector: str) -> Any:
    """A label selector's predicate: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`,
    `a`, `!a`, joined by commas (the API server's grammar, without its validation)."""
    terms: list[tuple[str, str, set[str]]] = []
    for raw in _split_terms(selector):
        term = raw.strip()
        if " notin " in term or " in " in term:
            key, op, values = term.replace("(", " ").replace(")", " ").split(None, 2)
            terms.append((key, op, {v.strip() for v in values.split(",") if v.strip()}))
        elif "!=" in term:
            key, value = term.split("!=", 1)
            terms.append((key.strip(), "notin", {value.strip()}))
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            terms.append((key.strip(), "in", {value.strip()}))
        elif term.startswith("!"):
            terms.append((term[1:].strip(), "absent", set()))
        elif term:
            terms.append((term, "present", set()))
    return lambda labels: all(_holds(labels, *term) for term in terms)


def _holds(labels: dict[str, str], key: str, op: str, values: set[str]) -> bool:
    if op == "in":
        return labels.get(key) in values
    if op == "notin":
        return labels.get(key) not in values
    return (key in labels) == (op == "present")


def _split_terms(selector: str) -> Iterator[str]:
    depth, start = 0, 0
    for index, char in enumerate(selector):
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            yield selector[start:index]
            start = index + 1
    yield selector[start:]


class StandIn:
    """The emulator on 127.0.0.1, on a thread with its own event loop."""

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self.api: MeshcEmulator | None = None
        self.url = ""
        self._thread = threading.Thread(target=self._run, name="kube-stand-in", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the Kubernetes stand-in did not start")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with MeshcEmulator() as api, kmock.Server(api) as server:
            self.api = api
            api.changed = asyncio.Condition()
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()

    def close(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    @property
    def emulator(self) -> MeshcEmulator:
        assert self.api is not None
        return self.api

    def fail(self, **fault: Any) -> Fault:
        """Inject a fault (see `Fault`); returns it, so a test can read its `hits`."""
        injected = Fault(**fault)
        with self.emulator.guard:
            self.emulator.faults.append(injected)
        return injected

    def kubeconfig(self) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "stand-in", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": "not-a-secret"}}],
            "contexts": [
                {"name": "stand-in", "context": {"cluster": "stand-in", "user": "tester"}}
            ],
            "current-context": "stand-in",
        }

    def seed(self, obj: dict[str, Any], manager: str = "kubectl-create") -> None:
        """Store an object as if created by `manager` (also read-only kinds, e.g. CRDs)."""
        group, _, version = obj["apiVersion"].rpartition("/")
        kind = next(
            k for k in KINDS if (k.group, k.version, k.kind) == (group, version, obj["kind"])
        )
        namespace = obj["metadata"].get("namespace", "") if kind.namespaced else ""
        with self.emulator.guard:
            stored = Stored(copy.deepcopy(obj), {manager: ("Update", set(fields(obj)))})
            self.emulator._commit(kind, namespace, obj["metadata"]["name"], None, stored, False)
