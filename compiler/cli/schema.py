"""`meshc schema`: the JSON Schemas of the intent kinds (for editors and other tools)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from compiler.schema import ALL_FILE, schema_files


@click.command("schema")
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Write one schema per kind plus all.schema.json into this directory.",
)
def schema_command(out: Path | None) -> None:
    """Print the JSON Schema of every meshc document (or write them all with --out)."""
    files = schema_files()
    if out is None:
        sys.stdout.write(files[ALL_FILE])
        return
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (out / name).write_text(text, encoding="utf-8")
    except OSError as exc:
        reason = exc.strerror or str(exc)
        click.echo(
            f"meshc schema: {out}: cannot write: {reason}; choose a writable directory", err=True
        )
        sys.exit(2)
    click.echo(f"wrote {len(files)} schemas to {out}", err=True)
