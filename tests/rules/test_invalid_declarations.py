"""A Service that fails validation still declares its name: its own error explains the
problem, so its policy, rollout, resilience and callers are not also told it is missing."""

from __future__ import annotations

from tests.helpers import compile_files

BROKEN = """\
apiVersion: meshc/v1
kind: Service
metadata: {name: pay, namespace: shop}
spec:
  ports: [{name: http, port: 80}]
  versions: {v1: {labels: {version: v1}}}
  calls: [api.stripe.com]
---
apiVersion: meshc/v1
kind: AccessPolicy
metadata: {name: pay, namespace: shop}
spec:
  service: pay
  rules:
  - from: [{service: web}]
---
apiVersion: meshc/v1
kind: Rollout
metadata: {name: pay, namespace: shop}
spec: {service: pay, stable: v1, split: {v1: 100}}
---
apiVersion: meshc/v1
kind: Resilience
metadata: {name: pay, namespace: shop}
spec: {service: pay, timeout: 2s}
"""

WEB = """\
apiVersion: meshc/v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {ports: [{name: http, port: 80}], calls: [pay]}
"""


def test_follow_on_undeclared_findings_are_not_reported() -> None:
    codes = {d.code for d in compile_files({"pay.yaml": BROKEN, "web.yaml": WEB}).diagnostics}
    assert "MC102" in codes or any(code.startswith("MC1") for code in codes), codes
    assert not codes & {"MC201", "MC202", "MC220", "MC221"}, codes


def test_a_truly_missing_service_is_still_reported() -> None:
    missing = BROKEN.split("---\n", 1)[1]  # the same documents without the Service
    codes = {d.code for d in compile_files({"pay.yaml": missing, "web.yaml": WEB}).diagnostics}
    assert {"MC201", "MC202", "MC220", "MC221"} <= codes, codes
