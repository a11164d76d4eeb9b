"""`meshd`: the reconciler command line.

Each subcommand (group) lives in its own module and is registered here if present, the way
`compiler/cli` does it; this module guarantees that no traceback reaches a user: a
`MeshdError` becomes one line and its exit code, anything else an internal error (exit 2).
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import click

from reconciler.errors import MeshdError

SUBCOMMANDS = (
    ("reconciler.ca.cli", "ca_command"),
    ("reconciler.run", "run_command"),
    ("reconciler.up", "up_command"),
)


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


def _register_optional() -> None:
    for module, attribute in SUBCOMMANDS:
        try:
            loaded = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        main.add_command(getattr(loaded, attribute))


_register_optional()
