"""`meshd call FROM TO [PATH]`: send requests from FROM's sidecar to TO, as FROM's
application would, and say what happened to each.

A request goes to FROM's outbound listener with the `Host` header naming TO, so it takes
exactly the path FROM's application's traffic takes: FROM's routes (only the services FROM
declares in `calls:`), then TO's sidecar and its RBAC, then TO's demo backend. Every
answer is classified once (`classify`): answered (with the instance that served it),
denied because FROM has no route to TO (FROM does not declare the call; Envoy answers 404
itself), denied by TO's RBAC (403, naming TO's AccessPolicy), or failed.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from compiler.model.placement import Address, InstancePlacement
from reconciler.errors import MeshdError
from reconciler.up.headers import DENIED_BY, SERVED_BY
from reconciler.up.runstate import RunState, ServiceInfo

REQUEST_TIMEOUT = 30.0
UPSTREAM_TIME = "x-envoy-upstream-service-time"
"""Set by Envoy on a response that came from upstream, absent on its own local replies."""
MATCHED_POLICY = "rbac_access_denied_matched_policy["
RBAC_DENIED = "RBAC: access denied"
"""The body of Envoy's RBAC filter's 403."""


class CallUsageError(MeshdError):
    code = 2


@dataclass(frozen=True, slots=True)
class Result:
    """One request's outcome."""

    status: int | None
    kind: str
    """answered | denied | failed"""
    detail: str
    """For answered: the instance (`service/version/index`); otherwise the reason."""

    @property
    def ok(self) -> bool:
        return self.kind == "answered" and self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True, slots=True)
class CallPlan:
    """Who calls whom, through which listener, with which request."""

    caller: str
    """The caller's `namespace/name`."""
    node_id: str
    outbound: Address | None
    callee: str
    callee_info: ServiceInfo
    port: int
    method: str
    path: str
    headers: Mapping[str, str]
    declared: bool
    """Whether the caller declares the call (in `calls:`)."""

    @property
    def host(self) -> str:
        return self.callee_info.host

    @property
    def short_caller(self) -> str:
        return self.caller.split("/", 1)[1]

    @property
    def short_callee(self) -> str:
        return self.callee.split("/", 1)[1]


def _matches(key: str, wanted: str) -> bool:
    namespace, name = key.split("/", 1)
    return wanted in (name, key, f"{name}.{namespace}")


def resolve_service(services: Mapping[str, ServiceInfo], wanted: str, *, role: str) -> str:
    found = sorted(key for key in services if _matches(key, wanted))
    if len(found) == 1:
        return found[0]
    known = ", ".join(sorted(services)) or "none"
    if not found:
        raise CallUsageError(f"{role} {wanted!r}: no such service in the running mesh ({known})")
    raise CallUsageError(
        f"{role} {wanted!r} is ambiguous ({', '.join(found)}); write it as namespace/name"
    )


def caller_instance(running: RunState, wanted: str) -> InstancePlacement:
    """FROM as a node id, or the first instance of the service FROM names."""
    if wanted in running.mesh.placement:
        return running.mesh.placement[wanted]
    caller = resolve_service(running.services, wanted, role="FROM")
    instances = [
        running.mesh.placement[node]
        for node in sorted(running.mesh.placement)
        if str(running.mesh.placement[node].service) == caller
    ]
    if not instances:
        raise CallUsageError(f"FROM {wanted!r}: the running mesh has no instance of {caller}")
    return instances[0]


def plan_call(
    running: RunState,
    *,
    caller: str,
    callee: str,
    method: str,
    path: str,
    headers: Sequence[str],
    port: int | None,
) -> CallPlan:
    instance = caller_instance(running, caller)
    target = resolve_service(running.services, callee, role="TO")
    info = running.services[target]
    http_ports = sorted(p for p, protocol in info.ports.items() if protocol != "tcp")
    if port is None:
        if not http_ports:
            raise CallUsageError(f"TO {callee!r}: {target} has no HTTP port to call")
        port = http_ports[0]
    elif port not in info.ports:
        ports = ", ".join(str(p) for p in sorted(info.ports)) or "none"
        raise CallUsageError(f"--port {port}: {target} has no such port (it has {ports})")
    elif info.ports[port] == "tcp":
        listener = next(
            (
                str(a)
                for (key, p), a in instance.tcp_outbound.items()
                if str(key) == target and p == port
            ),
            None,
        )
        through = f"connect to {listener} with a TCP client" if listener else "it is not declared"
        raise CallUsageError(
            f"--port {port}: a TCP port of {target}; `meshd call` sends HTTP ({through})"
        )
    if not path.startswith("/"):
        raise CallUsageError(f"PATH {path!r}: must start with '/', e.g. /reviews/0")
    return CallPlan(
        caller=str(instance.service),
        node_id=instance.node_id,
        outbound=instance.outbound,
        callee=target,
        callee_info=info,
        port=port,
        method=method.upper(),
        path=path,
        headers=parse_headers(headers),
        declared=target in _calls_of(running, str(instance.service)),
    )


def _calls_of(running: RunState, service: str) -> tuple[str, ...]:
    info = running.services.get(service)
    return info.calls if info is not None else ()


def parse_headers(raw: Sequence[str]) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for item in raw:
        name, colon, value = item.partition(":")
        if not colon or not name.strip() or any(c.isspace() for c in name.strip()):
            raise CallUsageError(f"-H {item!r}: write a header as 'name: value'")
        parsed[name.strip().lower()] = value.strip()
    return parsed


def classify(plan: CallPlan, status: int, headers: Mapping[str, str], body: bytes) -> Result:
    """The one place an answer is told apart. The demo backend always names itself, so an
    answer without `x-meshd-served-by` was made by a sidecar: by FROM's own when it carries
    no `x-envoy-upstream-service-time` (nothing upstream answered: a 404 is Envoy's "no
    route"), by TO's when it does (a 403 with RBAC's body, or with RBAC's detail header when
    there is no body — a HEAD —, is TO's AccessPolicy)."""
    served_by = headers.get(SERVED_BY)
    if served_by is not None:
        return Result(status, "answered", served_by)
    from_upstream = UPSTREAM_TIME in headers
    if status == 404 and not from_upstream:
        if not plan.declared:
            reason = f"{plan.short_caller} does not declare a call to {plan.short_callee}"
        else:
            reason = (
                f"{plan.short_caller} declares the call but its sidecar has no route to "
                f"{plan.host}:{plan.port} yet; see `meshd status`"
            )
        return Result(status, "denied", f"no route: {reason}")
    text = body.decode(errors="replace").strip()
    rbac_detail = headers.get(DENIED_BY, "").startswith(MATCHED_POLICY)
    if status == 403 and (text.startswith(RBAC_DENIED) or rbac_detail):
        return Result(status, "denied", f"403: {_denying_policy(plan, headers.get(DENIED_BY))}")
    first_line = text.splitlines()[0][:200] if text else "no body"
    return Result(status, "failed", f"{status}: {first_line}")


def _denying_policy(plan: CallPlan, detail: str | None) -> str:
    """The rule Envoy reports (`rbac_access_denied_matched_policy[<ns>/<policy>/rule-<n>]`,
    when TO's sidecar passes it on), else TO's AccessPolicies: nothing matched an allow."""
    matched = detail or ""
    if matched.startswith(MATCHED_POLICY) and matched.endswith("]"):
        matched = matched[len(MATCHED_POLICY) : -1]
    namespace, _, rest = matched.partition("/")
    policy, _, rule = rest.partition("/rule-")
    if namespace and policy and rule.isdigit():
        return f"AccessPolicy {namespace}/{policy} (rule {rule})"
    policies = plan.callee_info.policies
    return ", ".join(f"AccessPolicy {p}" for p in policies) or f"{plan.callee}'s RBAC"


def send(plan: CallPlan, count: int) -> list[Result]:
    """`count` requests over one kept-alive connection (reopened after a failure)."""
    if plan.outbound is None:
        reason = (
            f"no route: {plan.short_caller} does not declare a call to {plan.short_callee}; "
            "it declares no calls, so its sidecar has no outbound listener"
        )
        return [Result(None, "denied", reason)] * count
    results: list[Result] = []
    connection: http.client.HTTPConnection | None = None
    headers = {**plan.headers, "host": f"{plan.host}:{plan.port}"}
    for _ in range(count):
        if connection is None:
            connection = http.client.HTTPConnection(
                plan.outbound.host, plan.outbound.port, timeout=REQUEST_TIMEOUT
            )
        try:
            connection.request(plan.method, plan.path, headers=headers)
            response = connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            connection = None
            results.append(Result(None, "failed", _connection_problem(plan, exc)))
            continue
        answer = {k.lower(): v for k, v in response.getheaders()}
        results.append(classify(plan, response.status, answer, body))
        if answer.get("connection", "").lower() == "close":
            connection.close()
            connection = None
    if connection is not None:
        connection.close()
    return results


def _connection_problem(plan: CallPlan, exc: Exception) -> str:
    where = f"{plan.short_caller}'s sidecar at {plan.outbound}"
    if isinstance(exc, ConnectionRefusedError):
        return f"cannot connect to {where}: connection refused (is its Envoy running?)"
    if isinstance(exc, socket.timeout | TimeoutError):
        return f"no answer from {where} within {REQUEST_TIMEOUT:.0f}s"
    return f"request through {where} failed: {type(exc).__name__}: {exc}"


def version_of(served_by: str) -> str:
    """`reviews/v1/0` → `reviews v1` (`db/-/0` → `db`: a service without versions)."""
    parts = served_by.split("/")
    if len(parts) < 2:
        return served_by
    return parts[0] if parts[1] == "-" else f"{parts[0]} {parts[1]}"


def report_lines(plan: CallPlan, results: Sequence[Result]) -> list[str]:
    """One line per request for a single call; a summary with the split for several."""
    lines = [
        f"{plan.method} {plan.short_callee}{plan.path} from {plan.short_caller} "
        f"({plan.node_id} via {plan.outbound or 'no outbound listener'}, "
        f"Host: {plan.host}:{plan.port})"
    ]
    if len(results) == 1:
        lines.append(_result_line(results[0]))
        return lines
    answered = [r for r in results if r.kind == "answered"]
    ok = sum(1 for r in results if r.ok)
    lines.append(f"{len(results)} requests: {ok} answered 2xx")
    split = Counter(version_of(r.detail) for r in answered)
    for version, count in sorted(split.items()):
        lines.append(f"  {version:<28} {count:>6}  {100 * count / len(results):5.1f}%")
    others = Counter(_result_line(r) for r in results if not r.ok)
    for line, count in sorted(others.items()):
        lines.append(f"  {count:>6} × {line}")
    return lines


def _result_line(result: Result) -> str:
    if result.kind == "answered":
        status = f"{result.status} {_reason(result.status)}".strip()
        return f"{status}: answered by {version_of(result.detail)} ({result.detail})"
    return f"{result.kind} ({result.detail})"


def _reason(status: int | None) -> str:
    try:
        return http.client.responses[status] if status is not None else ""
    except KeyError:
        return ""


def results_json(plan: CallPlan, results: Sequence[Result]) -> str:
    return json.dumps(
        {
            "from": plan.caller,
            "node": plan.node_id,
            "to": plan.callee,
            "method": plan.method,
            "path": plan.path,
            "results": [{"status": r.status, "kind": r.kind, "detail": r.detail} for r in results],
        },
        indent=1,
    )
