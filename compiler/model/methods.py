"""Which HTTP methods can reach a service, per its AccessPolicies.

Retries (Resilience) and mirroring (Rollout) both repeat requests; whether that is safe
depends on the methods callers may send. Both kinds' lint rules ask this module, so the
answer is computed the same way for both.
"""

from __future__ import annotations

from typing import get_args

from compiler.kinds.access_policy.model import IDEMPOTENT_METHODS, Method, Rule
from compiler.model.mesh import MeshModel, ServiceView

ALL_METHODS: frozenset[str] = frozenset(get_args(Method))
NON_IDEMPOTENT_METHODS: frozenset[str] = ALL_METHODS - IDEMPOTENT_METHODS
"""POST, PATCH, CONNECT: repeating one may repeat its side effect."""


def accepted_methods(view: ServiceView, model: MeshModel) -> frozenset[str]:
    """The methods some caller may send to `view` at runtime.

    No enforced AccessPolicy means no method restriction (shadow mode and a mesh-wide
    default allow let every method through), unless the mesh default is deny and the
    service has no policy at all: then nothing reaches it. Otherwise it is the union of
    the allow rules' methods (a rule without `methods` allows all of them), less the
    methods a deny rule refuses to every caller unconditionally.
    """
    enforced = [p for p in view.policies if p.model.spec.mode == "enforce"]
    if not enforced:
        if not view.policies and model.settings.default_action == "deny":
            return frozenset()
        return ALL_METHODS
    allowed: set[str] = set()
    denied: set[str] = set()
    for policy in enforced:
        for rule in policy.model.spec.rules:
            if rule.action == "allow":
                allowed.update(rule.to.methods or ALL_METHODS)
            elif _denies_everyone(rule):
                denied.update(rule.to.methods or ALL_METHODS)
    return frozenset(allowed - denied)


def non_idempotent_methods(view: ServiceView, model: MeshModel) -> frozenset[str]:
    """The non-idempotent methods (POST, PATCH, CONNECT) that can reach `view`."""
    return accepted_methods(view, model) & NON_IDEMPOTENT_METHODS


def is_unrestricted(view: ServiceView) -> bool:
    """Whether no enforced AccessPolicy restricts `view` (every method is let through)."""
    return not any(p.model.spec.mode == "enforce" for p in view.policies)


def _denies_everyone(rule: Rule) -> bool:
    """A deny rule that applies to every caller on every path and port of its methods."""
    to = rule.to
    return (
        not to.paths
        and not to.ports
        and not rule.headers
        and any(source.is_wildcard for source in rule.from_)
    )
