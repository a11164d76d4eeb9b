"""`meshd diff` on the command line (the work is in `reconciler.kube.diff`, imported when
the command runs: `meshd --version` stays light)."""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.errors import MeshdError


class DiffFailed(MeshdError):
    code = 2


@click.command("diff")
@click.option("--repo", required=True, metavar="URL|DIR", help="The policy repository (or folder).")
@click.option(
    "--target", type=click.Choice(["kubernetes"]), required=True, help="What to diff against."
)
@click.option("--path", "policy_path", default="", metavar="SUBDIR", help="The policy root.")
@click.option("--ref", default=None, metavar="BRANCH|TAG", help="Default: the remote's HEAD.")
@click.option(
    "--kubeconfig",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="[default: KUBECONFIG, ~/.kube/config, in-cluster]",
)
@click.option("--context", default=None, help="The kubeconfig context.")
@click.option(
    "--fail-on",
    type=click.Choice(["error", "warning"]),
    default="error",
    show_default=True,
    help="Preflight findings of this severity count as errors (exit 2).",
)
def diff_command(
    repo: str,
    target: str,
    policy_path: str,
    ref: str | None,
    kubeconfig: Path | None,
    context: str | None,
    fail_on: str,
) -> None:
    """Show what `meshd run --target kubernetes` would change in the cluster (server-side
    dry run) and the live preflight's findings; exit 0 no change, 1 changes, 2 errors."""
    from compiler.diagnostics import Severity
    from reconciler.kube.diff import run_diff

    threshold = Severity.WARNING if fail_on == "warning" else Severity.ERROR
    try:
        lines, code = run_diff(repo, policy_path, ref, kubeconfig, context, threshold)
    except MeshdError as exc:  # exit 1 means "changes" here: every failure is 2
        raise DiffFailed(exc.message) from None
    for line in lines:
        click.echo(line, err=code == 2 and not lines[0].startswith("meshd diff:"))
    raise SystemExit(code)
