"""Documentation for the findings of the live preflight (MC8xx), which the reconciler
reports before it applies a revision to a cluster (`meshd run --target kubernetes`,
`meshd diff`); registered here so `meshc rules` and suppressions know them."""

from compiler.diagnostics import Severity
from compiler.lint.registry import loader_rule

loader_rule(
    "MC800",
    "crd-missing-in-cluster",
    Severity.ERROR,
    """The cluster serves no CustomResourceDefinition for a kind the revision emits.

    **Why is this bad.** Every apply of that kind would fail: Istio (or the Gateway API) is
    not installed, or is too old to serve the version meshc emits.

    **Use instead.** Install or upgrade Istio (1.22 or newer serves the v1 APIs), or the
    Gateway API CRDs for HTTPRoutes; then the next pass applies.
    """,
)
loader_rule(
    "MC801",
    "object-not-owned",
    Severity.ERROR,
    """An object the revision would write exists in the cluster without meshc's ownership.

    **Why is this bad.** It was created by hand, by Helm or by another tool; overwriting it
    would silently take it over, and pruning it later would delete someone else's object.

    **Use instead.** Delete or rename the existing object, or label it
    `app.kubernetes.io/managed-by: meshc` to hand it to meshc.
    """,
)
loader_rule(
    "MC802",
    "host-routed-elsewhere",
    Severity.ERROR,
    """Another VirtualService (not meshc's) routes a host a VirtualService of the revision
    routes, for the same gateways.

    **Why is this bad.** Istio merges or picks between VirtualServices for one host
    unpredictably; the split or the A/B rule meshc renders may not apply.

    **Use instead.** Remove the other VirtualService, or move its routes into the intents.
    """,
)
