"""Documentation for the findings the loader and validator report (MC0xx/MC1xx)."""

from compiler.diagnostics import Severity
from compiler.lint.registry import loader_rule

loader_rule(
    "MC000",
    "internal-error",
    Severity.ERROR,
    """meshc hit an internal error while checking this input.

    **What it does.** Reports a bug in meshc instead of crashing with a traceback.

    **Why is this bad.** The input may be fine; the result for it is unknown.

    **Use instead.** Report the message and the input to the meshc maintainers.
    """,
)
loader_rule(
    "MC001",
    "suppression-without-reason",
    Severity.ERROR,
    """An inline suppression has no reason, or names an unknown rule.

    **What it does.** Checks `# meshc: ignore[MCxxx] reason: ...` comments.

    **Why is this bad.** A suppression without a reason hides a finding from reviewers with
    no record of why it is acceptable; it does not suppress anything.

    **Example.** `mode: permissive  # meshc: ignore[MC401]`

    **Use instead.** `mode: permissive  # meshc: ignore[MC401] reason: legacy db until migration`
    """,
)
loader_rule(
    "MC101",
    "yaml-syntax",
    Severity.ERROR,
    """The file is not valid YAML, or uses YAML features meshc refuses (tags, merge keys).

    **Why is this bad.** Nothing in the file can be read reliably.

    **Example.** `ports: [{name: http, port: 9080}` (unclosed flow sequence), or `!!python/object`.

    **Use instead.** Plain YAML: mappings, lists, strings, numbers and booleans; indent with
    spaces.
    """,
)
loader_rule(
    "MC102",
    "duplicate-key",
    Severity.ERROR,
    """A mapping repeats a key.

    **Why is this bad.** YAML loaders silently keep one of the values; a reviewer reading the
    first one is misled (a duplicated `action:` can flip allow to deny).

    **Example.** `action: allow` followed later by `action: deny` in the same rule.

    **Use instead.** Each key once.
    """,
)
loader_rule(
    "MC103",
    "invalid-value",
    Severity.ERROR,
    """A value has the wrong type or shape for its field (or a document is not a mapping).

    **Example.** `port: http` where a number is expected; `timeout: 2` without a unit.

    **Use instead.** The form the schema in `schemas/` documents: `port: 9080`, `timeout: 2s`.
    """,
)
loader_rule(
    "MC104",
    "unknown-kind",
    Severity.ERROR,
    """A document claims to be meshc's but its apiVersion or kind is unknown or missing.

    **Why is this bad.** A typo in `kind` would otherwise make a policy silently disappear.

    **Example.** `apiVersion: meshc/v2` or `kind: AccesPolicy`.

    **Use instead.** `apiVersion: meshc/v1` with one of Mesh, Service, AccessPolicy, Rollout,
    Resilience.
    """,
)
loader_rule(
    "MC105",
    "unknown-field",
    Severity.ERROR,
    """A field is not part of the kind's schema.

    **Why is this bad.** A misspelt field (`retires:`) is otherwise ignored, and the policy the
    author thinks is in force is not.

    **Example.** `spec: {service: ratings, retires: {attempts: 3}}`

    **Use instead.** `spec: {service: ratings, retries: {attempts: 3}}`
    """,
)
loader_rule(
    "MC106",
    "missing-field",
    Severity.ERROR,
    """A required field is missing (reported at the mapping that should hold it).

    **Example.** An AccessPolicy without `spec.service`.

    **Use instead.** Add the field; `schemas/` lists the required ones.
    """,
)
loader_rule(
    "MC107",
    "unreadable-file",
    Severity.ERROR,
    """A file under the policy root is not readable UTF-8 text of a sane size.

    **Why is this bad.** Binary files, other encodings or huge files cannot be policies and are
    usually committed by mistake.

    **Use instead.** Save intents as UTF-8; move other files out, or exclude them in `meshc.yaml`.
    """,
)
loader_rule(
    "MC108",
    "resource-limit",
    Severity.ERROR,
    """A document exceeds a loader limit: alias expansion, nesting depth or node count.

    **Why is this bad.** "Billion laughs" documents expand a few lines into gigabytes and stall
    every tool that reads them.

    **Use instead.** Write values out; intent documents are small and shallow.
    """,
)
loader_rule(
    "MC109",
    "symlink-outside-root",
    Severity.ERROR,
    """A symbolic link under the policy root points outside it.

    **Why is this bad.** What the link points to is not reviewed with the repository, and may
    not exist where meshc runs (CI, the reconciler).

    **Use instead.** Copy the file into the policy root.
    """,
)
loader_rule(
    "MC190",
    "rejected-by-crds",
    Severity.ERROR,
    """An object compiled for Istio is rejected by the CustomResourceDefinitions of `--crds`.

    **What it does.** With `meshc lint --crds FILE` (or `meshc render --crds FILE`), lowers the
    tree to Istio and validates every emitted object against the served versions of those
    CRDs the way a strict API server would: unknown fields are errors, and the CRDs'
    `x-kubernetes-validations` (CEL) rules are evaluated. The finding points at the intent
    line the rejected field was lowered from. CEL rules meshc cannot evaluate, and kinds with
    no CRD in the files, are printed as notes, never counted as passed.

    **Why is this bad.** The API server refuses the object, so the reconciler cannot apply
    the revision: the policy in Git is not the policy in force. The usual causes are an
    Istio older than the fields meshc emits, or a value Istio's CEL rules reject.

    **Example.** `meshc lint --crds istio-1.20-crds.yaml` on a tree whose lowering uses a
    field that Istio version does not know.

    **Use instead.** Pass the CRDs of the Istio you run; upgrade Istio, or change the intent
    so the lowering stays within what it accepts.
    """,
)
