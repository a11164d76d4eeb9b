"""The review workflow, the composite action and the pre-commit hook.

What this covers: the three files parse; the workflow sets up through scripts/bootstrap.sh
and runs the action at the repository root; the action's shell steps — parsed out of
action.yml, with the workflow's inputs — run as they are against a real pull-request-shaped
clone (origin/main + a changed worktree) and produce SARIF, annotations, the markdown plan
and the verdict; the comment script (actions/github-script) runs under node against a fake
GitHub API and updates its own comment instead of adding a second one; the pre-commit hook
definition runs `meshc lint` on the policy root through the real `pre-commit` package.
Not covered here (no network, no GitHub): the `uses:` steps themselves (checkout,
setup-python, upload-sarif, github-script's runtime) and `language: python`'s environment
build (the test runs the same hook with `language: system`).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.helpers import BIN, REPO
from tests.plan.gitrepo import GIT_ENV, bookinfo_repo, edit, git, widen_reviews

_YAML = YAML(typ="safe", pure=True)


def load(path: Path) -> Any:
    return _YAML.load(path.read_text())


ACTION = load(REPO / "action.yml")
WORKFLOW = load(REPO / ".github" / "workflows" / "review.yml")
HOOKS = load(REPO / ".pre-commit-hooks.yaml")


def test_workflow_runs_on_pull_requests_through_bootstrap_and_the_action() -> None:
    assert "pull_request" in WORKFLOW["on"]
    assert WORKFLOW["permissions"] == {
        "contents": "read",
        "pull-requests": "write",
        "security-events": "write",
    }
    steps = WORKFLOW["jobs"]["review"]["steps"]
    checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0
    setup = next(s for s in steps if "run" in s)
    assert "bash scripts/bootstrap.sh" in setup["run"]
    assert (REPO / "scripts" / "bootstrap.sh").is_file()
    action = next(s for s in steps if s.get("uses") == "./")
    assert action["with"]["path"] == "policies"
    assert action["with"]["base"] == "origin/${{ github.base_ref }}"
    assert set(action["with"]) <= set(ACTION["inputs"])


def test_action_is_composite_with_the_documented_inputs() -> None:
    assert ACTION["runs"]["using"] == "composite"
    assert {"path", "base", "fail-on"} <= set(ACTION["inputs"])
    uses = [s["uses"] for s in ACTION["runs"]["steps"] if "uses" in s]
    assert uses == ["github/codeql-action/upload-sarif@v3", "actions/github-script@v7"]
    runs = " ".join(s.get("run", "") for s in ACTION["runs"]["steps"])
    assert 'meshc lint "$MESHC_PATH" --format sarif' in runs
    assert 'meshc lint "$MESHC_PATH" --format github' in runs
    assert 'meshc plan --base "$base" --path "$MESHC_PATH" --format markdown' in runs


def test_pre_commit_hook_definition() -> None:
    [hook] = HOOKS
    assert hook["id"] == "meshc-lint"
    assert hook["entry"] == "meshc lint"
    assert hook["language"] == "python"
    assert hook["pass_filenames"] is False
    assert re.search(hook["files"], "policies/a.yaml") and re.search(hook["files"], "b.yml")
    assert not re.search(hook["files"], "README.md")


# --- running the action's steps --------------------------------------------------------------

_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def _evaluate(expression: str, inputs: dict[str, str], outputs: dict[str, dict[str, str]]) -> str:
    """The few expression forms action.yml uses (inputs.X, steps.X.outputs.Y, github.X)."""
    if expression.startswith("inputs."):
        return inputs[expression.removeprefix("inputs.")]
    if match := re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", expression):
        return outputs.get(match[1], {}).get(match[2], "")
    if expression in ("github.token", "github.base_ref"):
        return {"github.token": "fake-token", "github.base_ref": "main"}[expression]
    raise AssertionError(f"action.yml uses an expression this test does not model: {expression}")


def _condition(condition: str | None, inputs: dict[str, str]) -> bool:
    if condition is None:
        return True
    for name, value in re.findall(r"inputs\.([\w-]+) == '([^']*)'", condition):
        if inputs[name] != value:
            return False
    return True


def _workflow_inputs() -> dict[str, str]:
    """The action's inputs as the review workflow sets them (defaults for the rest)."""
    step = next(s for s in WORKFLOW["jobs"]["review"]["steps"] if s.get("uses") == "./")
    inputs = {name: str(spec.get("default", "")) for name, spec in ACTION["inputs"].items()}
    for name, value in step["with"].items():
        inputs[name] = _EXPR.sub(lambda m: _evaluate(m[1], inputs, {}), str(value))
    return inputs


def run_action(
    clone: Path, tmp: Path
) -> tuple[dict[str, dict[str, str]], dict[str, subprocess.CompletedProcess[str]]]:
    """Run every shell step of action.yml, as GitHub runs composite `bash` steps."""
    inputs = _workflow_inputs()
    outputs: dict[str, dict[str, str]] = {}
    results: dict[str, subprocess.CompletedProcess[str]] = {}
    for index, step in enumerate(ACTION["runs"]["steps"]):
        if "run" not in step or not _condition(step.get("if"), inputs):
            continue
        name = step.get("id", f"step{index}")
        output_file = tmp / f"{name}.out"
        output_file.write_text("")
        env = {
            **os.environ,
            **GIT_ENV,
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
            "GITHUB_OUTPUT": str(output_file),
            "GITHUB_STEP_SUMMARY": str(tmp / "summary.md"),
            "GITHUB_BASE_REF": "main",
            "NO_COLOR": "1",
            "MESHC_NO_CACHE": "1",
        }
        for key, value in step.get("env", {}).items():
            env[key] = _EXPR.sub(lambda m: _evaluate(m[1], inputs, outputs), str(value))
        script = tmp / f"{name}.sh"
        script.write_text(step["run"])
        results[name] = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        outputs[name] = dict(
            line.split("=", 1) for line in output_file.read_text().splitlines() if "=" in line
        )
    return outputs, results


def pull_request(tmp: Path) -> Path:
    """origin has commit A on main; the clone's worktree holds the PR's change."""
    origin, _ = bookinfo_repo(tmp / "origin")
    clone = tmp / "clone"
    git(tmp, "clone", "-q", str(origin), str(clone))
    return clone


def test_action_steps_on_a_pull_request(tmp_path: Path) -> None:
    clone = pull_request(tmp_path)
    widen_reviews(clone)
    outputs, results = run_action(clone, tmp_path)
    assert outputs["sarif"] == {"status": "0"}, results["sarif"].stderr
    sarif = json.loads((clone / "meshc.sarif").read_text())
    assert sarif["version"] == "2.1.0"
    # ratings may now call reviews but does not declare the call: an info finding only.
    assert [(r["ruleId"], r["level"]) for r in sarif["runs"][0]["results"]] == [("MC408", "note")]
    assert results["annotations"].returncode == 0
    assert outputs["plan"] == {"status": "0"}, results["plan"].stderr
    plan = (clone / "meshc-plan.md").read_text()
    assert plan.startswith("<!-- meshc-plan part 1/1 -->\n## meshc plan: `origin/main@")
    assert "+ ratings → reviews GET /reviews/*" in plan
    assert "- reviews: v1 90%, v3 10% → v1 50%, v3 50%" in plan
    assert (tmp_path / "summary.md").read_text() == plan
    verdict = next(r for n, r in results.items() if n not in ("sarif", "annotations", "plan"))
    assert verdict.returncode == 0, verdict.stdout


def test_action_fails_the_check_when_head_breaks(tmp_path: Path) -> None:
    clone = pull_request(tmp_path)
    edit(clone / "policies" / "reviews.yaml", "calls: [ratings]", "calls: [ratingz]")
    outputs, results = run_action(clone, tmp_path)
    assert outputs["sarif"] == {"status": "1"}
    sarif = json.loads((clone / "meshc.sarif").read_text())
    assert any("ratingz" in r["message"]["text"] for r in sarif["runs"][0]["results"])
    assert "::error file=policies/reviews.yaml" in results["annotations"].stdout
    assert outputs["plan"] == {"status": "2"}
    assert "**head does not compile**" in (clone / "meshc-plan.md").read_text()
    verdict = next(r for n, r in results.items() if n not in ("sarif", "annotations", "plan"))
    assert verdict.returncode == 1
    assert "::error::meshc lint: findings at or above warning" in verdict.stdout
    assert "::error::meshc plan: head cannot be applied (exit 2)" in verdict.stdout


# --- the comment script ------------------------------------------------------------------------

_FAKE_GITHUB = """
const calls = [];
let comments = JSON.parse(process.env.EXISTING);
const github = {
  paginate: async (fn, args) => comments,
  rest: { issues: {
    listComments: 'listComments',
    updateComment: async (a) => { calls.push(['update', a.comment_id, a.body]); },
    createComment: async (a) => { calls.push(['create', a.issue_number, a.body]); },
    deleteComment: async (a) => { calls.push(['delete', a.comment_id]); },
  } },
};
const context = { repo: { owner: 'o', repo: 'r' }, issue: { number: 7 } };
(async () => { SCRIPT })().then(() => console.log(JSON.stringify(calls)));
"""


def run_comment_script(cwd: Path, existing: list[dict[str, Any]]) -> list[list[Any]]:
    step = next(
        s for s in ACTION["runs"]["steps"] if s.get("uses", "").startswith("actions/github-script@")
    )
    program = _FAKE_GITHUB.replace("SCRIPT", step["with"]["script"])
    (cwd / "comment.js").write_text(program)
    result = subprocess.run(
        ["node", "comment.js"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "EXISTING": json.dumps(existing), "PLAN_STATUS": "2"},
    )
    assert result.returncode == 0, result.stderr
    calls: list[list[Any]] = json.loads(result.stdout)
    return calls


@pytest.mark.skipif(
    shutil.which("node") is None, reason="node is not installed; the comment script is not run"
)
def test_comment_script_updates_its_one_comment(tmp_path: Path) -> None:
    (tmp_path / "meshc-plan.md").write_text(
        "<!-- meshc-plan part 1/2 -->\nfirst\n<!-- meshc-plan part 2/2 -->\nsecond\n"
    )
    bot = {"type": "Bot"}
    existing = [
        {
            "id": 1,
            "user": {"type": "User"},
            "body": "<!-- meshc-plan part 1/1 --> quoted by a human",
        },
        {"id": 2, "user": bot, "body": "<!-- meshc-plan part 1/3 -->\nold"},
        {"id": 3, "user": bot, "body": "<!-- meshc-plan part 3/3 -->\nold"},
    ]
    calls = run_comment_script(tmp_path, existing)
    assert calls == [
        ["update", 2, "<!-- meshc-plan part 1/2 -->\nfirst\n"],
        ["create", 7, "<!-- meshc-plan part 2/2 -->\nsecond\n"],
        ["delete", 3],
    ]
    (tmp_path / "meshc-plan.md").unlink()
    [[verb, number, body]] = run_comment_script(tmp_path, [])
    assert (verb, number) == ("create", 7)
    assert (
        body.startswith("<!-- meshc-plan part 1/1 -->\n## meshc plan failed")
        and "exited with 2" in body
    )


# --- the pre-commit hook -----------------------------------------------------------------------


def test_pre_commit_hook_lints_the_policy_root(tmp_path: Path) -> None:
    root, _ = bookinfo_repo(tmp_path / "repo")
    [hook] = HOOKS
    local = {**hook, "language": "system", "args": ["policies", "--no-cache"]}
    config = {"repos": [{"repo": "local", "hooks": [local]}]}
    stream = io.StringIO()
    YAML().dump(config, stream)
    (root / ".pre-commit-config.yaml").write_text(stream.getvalue())
    env = {
        **os.environ,
        **GIT_ENV,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
        "NO_COLOR": "1",
    }

    def pre_commit() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "pre-commit"), "run", "meshc-lint"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    git(root, "add", ".pre-commit-config.yaml")
    git(root, "commit", "-q", "-m", "hook config")
    (root / "NOTES.md").write_text("not an intent file\n")
    git(root, "add", "NOTES.md")
    skipped = pre_commit()
    assert skipped.returncode == 0 and "(no files to check)Skipped" in skipped.stdout

    edit(root / "policies" / "reviews.yaml", "calls: [ratings]", "calls: [ratingz]")
    git(root, "add", "policies/reviews.yaml")
    failed = pre_commit()
    assert failed.returncode == 1, failed.stdout
    assert "meshc lint" in failed.stdout and "Failed" in failed.stdout
    assert "reviews.yaml" in failed.stdout and "ratingz" in failed.stdout

    edit(root / "policies" / "reviews.yaml", "calls: [ratingz]", "calls: [ratings]  # fixed")
    git(root, "add", "policies/reviews.yaml")
    passed = pre_commit()
    assert passed.returncode == 0 and "Passed" in passed.stdout, passed.stdout
