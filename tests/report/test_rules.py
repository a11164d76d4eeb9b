"""`meshc rules` and the generated docs/rules.md."""

from __future__ import annotations

import re

from click.testing import CliRunner, Result

from compiler.cli import cli
from compiler.kinds import load_checks
from compiler.lint.registry import REGISTRY
from compiler.report.common import registered_rules
from compiler.report.rulesdoc import REGENERATE, rules_markdown, summary
from tests.helpers import REPO, run_cli

DOCS = REPO / "docs" / "rules.md"


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, ["rules", *args], catch_exceptions=False)


def _github_slug(heading: str) -> str:
    """GitHub's heading anchor: lower case, punctuation other than '-' dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_docs_rules_md_is_current() -> None:
    expected = rules_markdown(registered_rules())
    assert DOCS.read_text(encoding="utf-8") == expected, (
        f"docs/rules.md is stale; regenerate with: {REGENERATE}"
    )


def test_every_help_uri_anchor_exists_in_docs() -> None:
    load_checks()
    text = DOCS.read_text(encoding="utf-8")
    slugs = {_github_slug(h) for h in re.findall(r"^#+ (.+)$", text, re.M)}
    for rule in REGISTRY.values():
        page, _, fragment = rule.help_uri.partition("#")
        assert page.endswith("/docs/rules.md")
        assert fragment in slugs, f"{rule.code}: no heading for #{fragment} in docs/rules.md"
        assert f"](#{fragment})" in text  # the index links to it too


def test_rules_lists_every_rule() -> None:
    load_checks()
    result = _invoke()
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["CODE", "NAME", "SEVERITY", "SUMMARY"]
    listed = [line.split()[0] for line in lines[1:]]
    assert listed == sorted(REGISTRY)
    mc201 = next(line for line in lines if line.startswith("MC201"))
    assert mc201.split()[1:3] == ["unknown-service", "error"]
    assert mc201.endswith(summary(REGISTRY["MC201"]))


def test_rule_by_code_or_name_shows_full_doc() -> None:
    by_code = _invoke("mc201")
    by_name = _invoke("unknown-service")
    assert by_code.exit_code == 0 and by_code.stdout == by_name.stdout
    assert by_code.stdout.startswith("MC201 unknown-service (error; istioctl analyze IST0101)")
    assert "**Why is this bad.**" in by_code.stdout
    assert by_code.stdout.rstrip().endswith("docs/rules.md#mc201-unknown-service")


def test_rule_markdown_format() -> None:
    result = _invoke("MC201", "--format", "markdown")
    assert result.exit_code == 0
    assert result.stdout.startswith(
        "## MC201 unknown-service\n\n**Severity:** error · **Istio:** `IST0101`"
    )


def test_unknown_rule_is_a_usage_error_with_a_suggestion() -> None:
    result = run_cli("meshc", "rules", "unknown-servce")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "meshc rules: no rule 'unknown-servce'; did you mean 'unknown-service'? "
        "run `meshc rules` to list them"
    )
    assert "Traceback" not in result.stderr


def test_summaries_are_whole_sentences() -> None:
    """A docstring's first line is not a summary when the sentence wraps onto the next."""
    load_checks()
    listing = _invoke().stdout
    for rule in registered_rules():
        assert summary(rule).endswith((".", "?", "!", ")", "`")), (rule.code, summary(rule))
        assert summary(rule) in listing
    mc612 = next(line for line in listing.splitlines() if line.startswith("MC612"))
    assert mc612.endswith("to a service without declared retries.")
