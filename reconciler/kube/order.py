"""The order objects are applied in: what others select or reference first, the
policies that cut traffic last.

1. references — Services, ServiceEntries, Gateways (and the `cacerts` Secret): the names
   routes and policies point at exist before anything points at them;
2. subsets — DestinationRules: a VirtualService naming a subset that does not exist yet
   sends its requests nowhere (Istio answers 503), so subsets come before routes;
3. routes — VirtualServices, HTTPRoutes, Sidecars;
4. allows — PeerAuthentications, AuthorizationPolicies with rules, NetworkPolicies that
   select some pods: every allow exists before the denial that makes it matter;
5. denials — the allow-nothing AuthorizationPolicies (no rules) and the namespace-wide
   default-deny NetworkPolicies (an empty pod selector): last, so on a first install no
   request is cut before the allows exist.

Pruning runs the other way round (denials first, references last), after every apply:
a route stops naming a subset before the subset goes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

WAVES = ("references", "subsets", "routes", "allows", "denials")

_BY_KIND = {
    "Namespace": 0,
    "Service": 0,
    "ServiceEntry": 0,
    "Gateway": 0,
    "Secret": 0,
    "DestinationRule": 1,
    "VirtualService": 2,
    "HTTPRoute": 2,
    "Sidecar": 2,
    "PeerAuthentication": 3,
}


def wave(obj: dict[str, Any]) -> int:
    """The index in `WAVES` `obj` is applied in."""
    kind = obj.get("kind", "")
    spec = obj.get("spec") or {}
    if kind == "AuthorizationPolicy":
        denies = spec.get("action") == "DENY" or (
            not spec.get("rules") and spec.get("action", "ALLOW") == "ALLOW"
        )
        return 4 if denies else 3
    if kind == "NetworkPolicy":
        return 4 if spec.get("podSelector") == {} else 3
    return _BY_KIND.get(kind, 2)


def staged(objects: Iterable[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """`objects` (part name, object) in apply order; within a wave, by part name."""
    return sorted(objects, key=lambda pair: (wave(pair[1]), pair[0]))
