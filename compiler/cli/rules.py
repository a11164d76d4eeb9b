"""`meshc rules`: the lint rule catalogue, or one rule's full documentation."""

from __future__ import annotations

import difflib
import sys

import click

from compiler.lint.registry import Rule
from compiler.report.common import registered_rules
from compiler.report.rulesdoc import rule_markdown, rule_text, rules_markdown, rules_text


@click.command("rules")
@click.argument("rule", required=False)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown"]),
    default="text",
    show_default=True,
)
def rules_command(rule: str | None, fmt: str) -> None:
    """List every lint rule, or explain RULE (a code like MC201 or a name like unknown-service)."""
    rules = registered_rules()
    if rule is None:
        sys.stdout.write(rules_text(rules) if fmt == "text" else rules_markdown(rules))
        return
    found = find_rule(rules, rule)
    if found is None:
        click.echo(f"meshc rules: no rule {rule!r}{_suggestion(rules, rule)}", err=True)
        sys.exit(2)
    sys.stdout.write(rule_text(found) if fmt == "text" else rule_markdown(found))


def find_rule(rules: list[Rule], wanted: str) -> Rule | None:
    """By code (any case) or by name."""
    key = wanted.strip().lower()
    for candidate in rules:
        if key in (candidate.code.lower(), candidate.name):
            return candidate
    return None


def _suggestion(rules: list[Rule], wanted: str) -> str:
    names = [r.name for r in rules] + [r.code for r in rules]
    close = difflib.get_close_matches(wanted, names, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"; {hint}run `meshc rules` to list them"
