"""Lint rules about Service documents: references, versions, identities."""

from __future__ import annotations

from collections.abc import Iterable

from compiler.diagnostics import Severity
from compiler.lint.registry import Finding, LintContext, rule


@rule("MC201", "unknown-service", Severity.ERROR, istio="IST0101")
def unknown_called_service(ctx: LintContext) -> Iterable[Finding]:
    """A `calls:` entry names a service that no Service document declares.

    **What it does.** Resolves every entry of a Service's `calls:` list (`name` in the same
    namespace, `ns/name` elsewhere) against the declared services.

    **Why is this bad.** The client's proxy gets no route for an undeclared host, so the call
    fails at runtime; usually the name is misspelt or the namespace is missing. Istio reports
    the same mistake in routing objects as IST0101 (ReferencedResourceNotFound).

    **Example.**
    ```yaml
    kind: Service
    metadata: {name: productpage, namespace: bookinfo}
    spec: {ports: [{name: http, port: 9080}], calls: [review]}
    ```

    **Use instead.** `calls: [reviews]` (or `calls: [other-ns/reviews]`).
    """
    model = ctx.model
    for view in model.services.values():
        for index, ref in enumerate(view.spec.calls):
            if model.service(ref, view.key.namespace) is None:
                yield Finding(
                    view.intent.span("calls", index),
                    f"{view.key} calls {ref!r}, which no Service declares",
                    "declare the Service, or fix the name (use ns/name for another namespace)",
                )
