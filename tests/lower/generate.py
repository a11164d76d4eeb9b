"""A generated mesh of any size using every lowering feature (schema checks, benchmarks)."""

from __future__ import annotations


def generated_mesh(services: int, *, namespaces: int = 4) -> dict[str, str]:
    """`file → text` of a policy tree with `services` services spread over `namespaces`."""
    files = {
        "mesh.yaml": (
            "apiVersion: meshc/v1\nkind: Mesh\nmetadata: {name: generated}\n"
            "spec:\n  trustDomain: gen.example\n  mtls:\n    exceptions:\n"
            "    - {service: ns0/svc0, until: 2099-01-01, reason: generated exception}\n"
        )
    }
    for index in range(services):
        ns = f"ns{index % namespaces}"
        name = f"svc{index}"
        callee = f"ns{(index + 1) % namespaces}/svc{(index + 1) % services}"
        caller = f"ns{(index - 1) % namespaces}/svc{(index - 1) % services}"
        docs = [
            f"""apiVersion: meshc/v1
kind: Service
metadata: {{name: {name}, namespace: {ns}}}
spec:
  ports:
  - {{name: http, port: 80, targetPort: 8080, protocol: http}}
  - {{name: grpc, port: 9090, protocol: grpc}}
  versions:
    v1: {{labels: {{version: v1}}}}
    v2: {{labels: {{version: v2}}}}
  calls: [{callee}]
""",
            f"""apiVersion: meshc/v1
kind: AccessPolicy
metadata: {{name: {name}, namespace: {ns}}}
spec:
  service: {name}
  mode: {"shadow" if index % 7 == 3 else "enforce"}
  rules:
  - from: [{{service: {caller}}}]
    to: {{methods: [GET], paths: ["/api/*"], ports: [http]}}
  - from: [{{ingressGateway: true}}]
    to: {{methods: [GET], paths: ["/public*"]}}
    log: {"true" if index % 5 == 0 else "false"}
  - from: [{{identity: {ns}/intruder}}]
    action: deny
""",
        ]
        if index % 3 == 0:
            docs.append(
                f"""apiVersion: meshc/v1
kind: Rollout
metadata: {{name: {name}, namespace: {ns}}}
spec:
  service: {name}
  stable: v1
  canary: v2
  steps: [{{weight: 20, pause: 1m}}, {{weight: 100}}]
  match: [{{headers: {{x-canary: {{exact: "yes"}}}}, version: v2}}]
"""
            )
        if index % 4 == 0:
            docs.append(
                f"""apiVersion: meshc/v1
kind: Resilience
metadata: {{name: {name}, namespace: {ns}}}
spec:
  service: {name}
  timeout: 3s
  retries: {{attempts: 2, perTryTimeout: 1s, retryOn: [connect-failure, refused-stream]}}
  circuitBreaker: {{maxConnections: 50, consecutive5xx: 3, interval: 10s, baseEjectionTime: 30s}}
  loadBalancer: least-request
"""
            )
        files[f"{ns}/{name}.yaml"] = "---\n".join(docs)
    return files
