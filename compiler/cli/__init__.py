"""`meshc`: the authoring and CI command line.

Each subcommand lives in its own module; this one wires them and guarantees that no
Python traceback ever reaches a user (exit 2 with a one-line message instead).
"""

from __future__ import annotations

import os
import sys

import click

from compiler.cli.lint import exit_without_teardown, lint_command, lint_finished

OPTIONAL_COMMANDS: dict[str, tuple[str, str]] = {
    "graph": ("compiler.cli.graph", "graph_command"),
    "schema": ("compiler.cli.schema", "schema_command"),
    "rules": ("compiler.cli.rules", "rules_command"),
    "render": ("compiler.cli.render", "render_command"),
    "plan": ("compiler.cli.plan", "plan_command"),
}
"""Subcommands that other modules contribute, imported only when used (or for --help):
`meshc lint` does not pay for the imports of render, plan and the CA."""


class LazyGroup(click.Group):
    """A group whose optional subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        present = [name for name, (mod, _) in OPTIONAL_COMMANDS.items() if _module_exists(mod)]
        return sorted({*super().list_commands(ctx), *present})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in OPTIONAL_COMMANDS:
            return command
        module, attribute = OPTIONAL_COMMANDS[cmd_name]
        if not _module_exists(module):
            return None
        import importlib

        loaded: click.Command = getattr(importlib.import_module(module), attribute)
        self.add_command(loaded, cmd_name)
        return loaded


def _module_exists(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="meshc")
def cli() -> None:
    """meshc — lint, compile and plan service-mesh intent."""


cli.add_command(lint_command)


def main() -> None:
    try:
        cli.main(standalone_mode=True)
    except SystemExit as exc:
        if lint_finished() and isinstance(exc.code, int | None):
            exit_without_teardown(exc.code or 0)
        raise
    except KeyboardInterrupt:
        click.echo("meshc: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # the one place unexpected errors are classified
        if os.environ.get("MESHC_DEBUG"):
            raise
        click.echo(f"meshc: internal error: {type(exc).__name__}: {exc}", err=True)
        click.echo("meshc: set MESHC_DEBUG=1 for details and please report it", err=True)
        sys.exit(2)
