"""`meshc`: the authoring and CI command line.

Each subcommand lives in its own module; this one wires them and guarantees that no
Python traceback ever reaches a user (exit 2 with a one-line message instead), and that
Ctrl-C ends any command quietly with exit 130 (128 + SIGINT, the shell's convention), never
with 1, which means "findings".
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType
from typing import NamedTuple


class Interrupted(BaseException):
    """Ctrl-C, raised by our SIGINT handler instead of KeyboardInterrupt: click turns a
    KeyboardInterrupt into "Aborted!" and exit 1, and a BaseException that is not one
    passes through click and every `except Exception` to `main`, running `finally`
    blocks on the way (so a lock or a temporary file is released)."""


def _exit_quietly(signum: int, frame: FrameType | None) -> None:
    """SIGINT while the console script imports meshc: nothing has been written yet, and a
    KeyboardInterrupt here would print a traceback from the import."""
    os._exit(130)


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted


_CONSOLE = os.path.basename(sys.argv[0]) in ("meshc", "meshc.exe")  # not in-process callers
if _CONSOLE and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
    signal.signal(signal.SIGINT, _exit_quietly)

import click  # noqa: E402 (after the start-up SIGINT handler, on purpose)

from compiler.cli.common import output_complete  # noqa: E402
from compiler.cli.lint import exit_without_teardown, lint_command, lint_finished  # noqa: E402


class Optional(NamedTuple):
    module: str
    attribute: str
    summary: str
    """The command's one-line help, shown by `meshc --help` without importing it (a
    test checks it equals the command's own)."""


OPTIONAL_COMMANDS: dict[str, Optional] = {
    "graph": Optional(
        "compiler.cli.graph",
        "graph_command",
        "Print the access graphs of the policy root at PATH (default: .).",
    ),
    "schema": Optional(
        "compiler.cli.schema",
        "schema_command",
        "Print the JSON Schema of every meshc document (or write them all with --out).",
    ),
    "rules": Optional(
        "compiler.cli.rules",
        "rules_command",
        "List every lint rule, or explain RULE (a code like MC201 or a name like unknown-service).",
    ),
    "render": Optional(
        "compiler.cli.render",
        "render_command",
        "Render the policy root at PATH (default: .) to the target's objects.",
    ),
    "plan": Optional(
        "compiler.cli.plan",
        "plan_command",
        "Compare the policy root at --base with --head: resources, meaning and risk flags.",
    ),
    "rollback": Optional(
        "compiler.cli.rollback",
        "rollback_command",
        "Revert REV: print the plan of the revert, then commit it (exit 2 when refused).",
    ),
}
"""Subcommands that other modules contribute, imported only when used: `meshc lint` and
`meshc --help` do not pay for the imports of render, plan and the graph."""


class LazyGroup(click.Group):
    """A group whose optional subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        present = [
            name for name, entry in OPTIONAL_COMMANDS.items() if _module_exists(entry.module)
        ]
        return sorted({*super().list_commands(ctx), *present})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in OPTIONAL_COMMANDS:
            return command
        module, attribute, _ = OPTIONAL_COMMANDS[cmd_name]
        if not _module_exists(module):
            return None
        import importlib

        loaded: click.Command = getattr(importlib.import_module(module), attribute)
        self.add_command(loaded, cmd_name)
        return loaded

    def invoke(self, ctx: click.Context) -> object:
        """Run the command; a KeyboardInterrupt (one raised by code rather than by our
        SIGINT handler) becomes `Interrupted` too, so click does not report it as exit 1."""
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise Interrupted from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's command list, with the summaries of unloaded commands from the table."""
        rows = []
        limit = formatter.width - 6 - max(len(name) for name in self.list_commands(ctx))
        for name in self.list_commands(ctx):
            loaded = self.commands.get(name)
            if loaded is not None:
                rows.append((name, loaded.get_short_help_str(limit)))
            else:
                rows.append((name, _shorten(OPTIONAL_COMMANDS[name].summary, limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _shorten(text: str, limit: int) -> str:
    """click's own shortening of a help line (through a command that only has help)."""
    return click.Command(None, help=text).get_short_help_str(limit)


def _module_exists(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="meshc")
def cli() -> None:
    """meshc — lint, compile and plan service-mesh intent."""


cli.add_command(lint_command)


def main() -> None:
    """The console entry point: exit codes 0/1/2 from the command, 130 on Ctrl-C."""
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.SIG_IGN:  # started with SIGINT ignored (nohup, &): keep it so
        signal.signal(signal.SIGINT, _raise_interrupted)
    try:
        _run()
    except (Interrupted, KeyboardInterrupt):
        sys.exit(130)
    finally:
        if previous is not None and previous is not signal.SIG_IGN:
            signal.signal(signal.SIGINT, previous)


def _run() -> None:
    try:
        cli.main(standalone_mode=True)
    except SystemExit as exc:
        if (lint_finished() or output_complete()) and isinstance(exc.code, int | None):
            exit_without_teardown(exc.code or 0)
        raise
    except Exception as exc:  # the one place unexpected errors are classified
        if os.environ.get("MESHC_DEBUG"):
            raise
        click.echo(f"meshc: internal error: {type(exc).__name__}: {exc}", err=True)
        click.echo("meshc: set MESHC_DEBUG=1 for details and please report it", err=True)
        sys.exit(2)
