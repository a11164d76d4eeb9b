"""`meshc lint --crds FILE`: also lower to Istio and validate against the user's CRDs.

Kept apart from `compiler/cli/lint.py` so a plain `meshc lint` does not import jsonschema,
cel-python or the lowering. The findings (MC190) get their severity, `meshc.yaml`
configuration and inline suppressions from the same engine as every other rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from compiler.diagnostics import Diagnostic

if TYPE_CHECKING:
    from compiler.api import Compilation
    from compiler.verify.crds import CrdReport, CrdSet


def load_crds(files: Sequence[Path]) -> CrdSet:
    """Read the `--crds` files; a bad one is a usage error (exit 2) naming file and line."""
    from compiler.verify.crds import CrdLoadError, load_crd_files

    try:
        return load_crd_files(list(files))
    except CrdLoadError as exc:
        raise click.BadParameter(str(exc), param_hint="--crds") from None


def crd_findings(compilation: Compilation, crds: CrdSet) -> tuple[list[Diagnostic], list[str]]:
    """The compilation's diagnostics with the CRD findings merged in, and the notes to print
    (what could not be checked: a tree that does not compile, kinds without a CRD, CEL
    rules cel-python cannot evaluate)."""
    from compiler.lint.engine import finalize

    if not compilation.ok:
        note = "--crds: the tree does not compile, so nothing was lowered or checked"
        return compilation.diagnostics, [note]
    found, report = check_compilation(compilation, crds)
    notes = [f"--crds: no CRD for {kind}; not checked" for kind in sorted(report.unchecked_kinds)]
    notes.extend(
        f"--crds: CEL rule not evaluated ({reason}): {rule}"
        for rule, reason in sorted(report.cel_gaps.items())
    )
    suppressions = {
        name: scanned
        for name, result in compilation.files.items()
        if (scanned := result.suppressions())
    }
    finalized = finalize(found, suppressions=suppressions, config=compilation.config.lint)
    merged: dict[tuple[str, object, str], Diagnostic] = {
        (d.code, d.span, d.message): d for d in compilation.diagnostics
    }
    for diag in finalized:
        merged.setdefault((diag.code, diag.span, diag.message), diag)
    return sorted(merged.values(), key=Diagnostic.sort_key), notes


def check_compilation(
    compilation: Compilation, crds: CrdSet, *, target: str = "istio"
) -> tuple[list[Diagnostic], CrdReport]:
    """Lower and check one compilation: located findings plus the report (its CEL gaps and
    unchecked kinds are worth printing as notes). A compilation with errors has nothing to
    lower: no findings here (lint reports its errors already). Here rather than in
    `compiler.verify`, which judges emitted objects and imports no backend."""
    from compiler.lower import lower
    from compiler.verify.crds import CrdReport, check_artifacts
    from compiler.verify.findings import crd_diagnostics

    if not compilation.ok:
        return [], CrdReport()
    report = check_artifacts(lower(compilation, target=target), crds)
    return crd_diagnostics(report, compilation), report
