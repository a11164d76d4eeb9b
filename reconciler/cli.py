"""`meshd`: the reconciler command line.

Each subcommand (group) lives in its own module and is registered here by a plain import:
a command that fails to import must fail loudly at start-up, not vanish from `--help`. This
module guarantees that no traceback reaches a user: a `MeshdError` becomes one line and its
exit code, anything else an internal error (exit 2).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from reconciler.ca.cli import ca_command
from reconciler.errors import MeshdError
from reconciler.kube.diff_cli import diff_command
from reconciler.run.command import (
    reconcile_command,
    resume_command,
    run_command,
    suspend_command,
)
from reconciler.up.cli import call_command, status_command, up_command

EXIT_BROKEN_PIPE = 141
"""128 + SIGPIPE: what a shell reports for a command whose reader went away (`| head`)."""


def _quiet_closed_stdout() -> None:
    """The reader closed our stdout (`meshd ... | head -1`): nothing more can be shown, so
    point stdout at /dev/null, or Python's exit-time flush prints a second error."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (an in-process test runner)
        pass


class MeshdGroup(click.Group):
    """Classifies errors in exactly one place."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            result = super().invoke(ctx)
            sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
            return result
        except BrokenPipeError:
            _quiet_closed_stdout()
            ctx.exit(EXIT_BROKEN_PIPE)
        except click.exceptions.Exit:
            sys.stdout.flush()
            raise
        except (click.ClickException, click.Abort):
            raise
        except MeshdError as exc:
            click.echo(f"meshd: {exc.message}", err=True)
            ctx.exit(exc.code)
        except KeyboardInterrupt:
            click.echo("meshd: interrupted", err=True)
            ctx.exit(130)
        except Exception as exc:
            if os.environ.get("MESHD_DEBUG"):
                raise
            # The type only: an arbitrary exception's text could carry data we must not print.
            click.echo(
                f"meshd: internal error ({type(exc).__name__}); set MESHD_DEBUG=1 "
                "for details and please report it",
                err=True,
            )
            ctx.exit(2)


@click.group(cls=MeshdGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="meshc")
def main() -> None:
    """meshd — the meshc reconciler: applies compiled intent and runs the mesh CA."""


main.add_command(ca_command)
main.add_command(up_command)
main.add_command(call_command)
main.add_command(status_command)
main.add_command(run_command)
main.add_command(suspend_command)
main.add_command(resume_command)
main.add_command(reconcile_command)
main.add_command(diff_command)
