"""`meshc`: the authoring and CI command line.

Each subcommand lives in its own module; this one wires them and guarantees that no
Python traceback ever reaches a user (exit 2 with a one-line message instead).
"""

from __future__ import annotations

import os
import sys

import click

from compiler.cli.lint import lint_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="meshc")
def cli() -> None:
    """meshc — lint, compile and plan service-mesh intent."""


cli.add_command(lint_command)


def _register_optional() -> None:
    """Subcommands that other modules contribute (graph, schema, render, plan, rules)."""
    import importlib

    for module, attribute in (
        ("compiler.cli.graph", "graph_command"),
        ("compiler.cli.schema", "schema_command"),
        ("compiler.cli.rules", "rules_command"),
        ("compiler.cli.render", "render_command"),
        ("compiler.cli.plan", "plan_command"),
    ):
        try:
            loaded = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        cli.add_command(getattr(loaded, attribute))


_register_optional()


def main() -> None:
    try:
        cli.main(standalone_mode=True)
    except SystemExit:
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
