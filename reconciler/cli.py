"""`meshd`: the reconciler command line.

Each subcommand (group) lives in its own module and is registered here by a plain import:
a command that fails to import must fail loudly at start-up, not vanish from `--help`. This
module guarantees that no traceback reaches a user: a `MeshdError` becomes one line and its
exit code, anything else an internal error (exit 2).
"""

from __future__ import annotations

import os
from typing import Any

import click

from reconciler.ca.cli import ca_command
from reconciler.errors import MeshdError


class MeshdGroup(click.Group):
    """Classifies errors in exactly one place."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
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
