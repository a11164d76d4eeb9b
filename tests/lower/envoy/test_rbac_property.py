"""On generated intent trees, the RBAC a snapshot carries decides every access question
as the effective model does: for each service's first instance, each caller the mesh can
tell apart, each method, sample path, header probe and port, the Envoy RBAC evaluator
(`rbac_eval`, Envoy's documented semantics) and the model's `AccessShape` agree.

Callers whose SPIFFE ID is of another trust domain are left out: the inbound TLS handshake
refuses them before RBAC runs (the trust bundle holds this mesh's roots only), which the
model does not describe. `MESHC_FIDELITY_EXAMPLES` runs more trees than the default.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

from hypothesis import Phase, assume, given, settings

from compiler.lower import lower
from compiler.model.mesh import ServiceKey
from compiler.model.placement import Placement
from tests.fidelity.probes import (
    SAMPLE_PATHS,
    Question,
    authorization_policies,
    callers,
    header_probes,
    model_allows,
    model_shapes,
    named_methods,
)
from tests.helpers import tree
from tests.lower.envoy.rbac_eval import InboundRbac, Request, decide_tcp
from tests.lower.envoy.support import compile_placed, fixed_placement, snapshots_of
from tests.lower.test_lowering_fuzz import FUZZ, intent_trees, valid_tree

EXAMPLES = int(os.environ.get("MESHC_FIDELITY_EXAMPLES", "8"))


def _first_nodes(placement: Placement) -> dict[ServiceKey, str]:
    out: dict[ServiceKey, str] = {}
    for node in sorted(placement):
        out.setdefault(placement[node].service, node)
    return out


@settings(FUZZ, max_examples=EXAMPLES, phases=[Phase.explicit, Phase.generate])
@given(intent_trees())
def test_envoy_rbac_decides_every_request_as_the_model(
    generated: tuple[list[dict[str, Any]], dict[str, int]],
) -> None:
    docs, state = generated
    files, compilation = valid_tree(docs, state)
    policies = authorization_policies([obj for _, obj in lower(compilation)])
    assume(
        not any(
            "" in (condition.get("values") or [])
            for policy in policies
            for rule in policy["spec"].get("rules") or []
            for condition in rule.get("when") or []
        )
    )
    placed = compile_placed(tree(files, with_mesh=False), state=state)
    snapshots = snapshots_of(placed)
    nodes = _first_nodes(fixed_placement(placed.model))
    domain = f"spiffe://{placed.model.settings.trust_domain}/"
    caller_list = [c for c in callers(compilation, policies) if c.spiffe.startswith(domain)]
    problems: list[str] = []
    for key, shape in sorted(model_shapes(placed).items()):
        view = placed.model.services[key]
        snapshot = snapshots[nodes[key]]
        methods = named_methods(policies)
        inbound = {
            int(p.port): InboundRbac(snapshot, int(p.port))
            for p in view.spec.ports
            if p.protocol != "tcp"
        }
        for port, caller, method, path, headers in itertools.product(
            view.spec.ports, caller_list, methods, SAMPLE_PATHS, header_probes(policies)
        ):
            question = Question(caller, key, method, path, int(port.container_port), headers)
            expected = model_allows(shape, question)
            if port.protocol == "tcp":
                actual = decide_tcp(snapshot, int(port.port), caller.spiffe)
            else:
                request = Request(caller.spiffe, method, path, dict(headers))
                actual = inbound[int(port.port)].decide(request).allowed
            if actual != expected:
                problems.append(
                    f"{question}: model {'allows' if expected else 'denies'}, "
                    f"Envoy RBAC {'allows' if actual else 'denies'}"
                )
    assert not problems, "\n".join(problems[:5]) + f"\n{docs}"
