"""Command-line edges a new user hits first: an empty or mistyped policy root, the root a
file argument belongs to, a rollout state that does not fit the tree, and Ctrl-C."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from compiler.cli import cli, main
from tests.helpers import MESH, NOW, REPO, write_tree
from tests.plan.gitrepo import commit_all, init_repo
from tests.plan.runner import meshc_plan

RICH = REPO / "tests" / "lower" / "fixtures" / "rich"


def invoke(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert "Traceback" not in result.stdout + result.stderr
    return result


# --- 12: a policy root without any meshc document -------------------------------------------


@pytest.mark.parametrize("command", ["lint", "render", "graph"])
def test_empty_root_is_refused(tmp_path: Path, command: str) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = invoke(command, str(empty), "--now", NOW.isoformat())
    assert result.exit_code == 2, result.stdout + result.stderr
    assert f"meshc {command}: {empty}: no meshc document under this policy root" in result.stderr
    assert "--allow-empty" in result.stderr
    assert result.stdout == ""


def test_root_of_foreign_documents_only_is_refused(tmp_path: Path) -> None:
    foreign = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n"
    root = write_tree(tmp_path / "k8s", {"web.yaml": foreign})
    result = invoke("lint", str(root))
    assert result.exit_code == 2 and "no meshc document" in result.stderr


def test_allow_empty_accepts_an_empty_root(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert invoke("lint", str(empty), "--allow-empty").exit_code == 0
    rendered = invoke("render", str(empty), "--allow-empty", "--now", NOW.isoformat())
    assert rendered.exit_code == 0 and "kind: PeerAuthentication" in rendered.stdout


def test_a_broken_file_is_reported_not_called_empty(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "p", {"bad.yaml": "a: [unclosed\n"})
    result = invoke("lint", str(root))
    assert result.exit_code == 1 and "no meshc document" not in result.stderr


def test_plan_refuses_a_head_without_documents_but_not_an_empty_base(tmp_path: Path) -> None:
    root = init_repo(tmp_path / "repo")
    (root / "policies").mkdir()
    (root / "policies" / "README.yaml").write_text("note: nothing here yet\n")
    commit_all(root, "empty policy root")
    refused = meshc_plan("--base", "main", "--repo", str(root), "--path", "policies")
    assert refused.code == 2 and "head (worktree)" in refused.err, refused.err
    assert "no meshc document" in refused.err and refused.out == ""
    allowed = meshc_plan(
        "--base", "main", "--repo", str(root), "--path", "policies", "--allow-empty"
    )
    assert allowed.code == 0, allowed.err
    (root / "policies" / "mesh.yaml").write_text(MESH)
    against_empty_base = meshc_plan("--base", "main", "--repo", str(root), "--path", "policies")
    assert against_empty_base.code == 0, against_empty_base.err


# --- 13: a rollout state that does not fit the tree ------------------------------------------


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("shop/nope: 1\n", "shop/nope: no Rollout of that name in the policy root"),
        ("shop/catalog: 7\n", "shop/catalog: step 7 does not exist (steps count from 0"),
        ("legacy/ledger: 1\n", "legacy/ledger: step 1 does not exist"),
    ],
)
def test_render_refuses_a_rollout_state_that_does_not_fit(
    tmp_path: Path, content: str, needle: str
) -> None:
    state = tmp_path / "state.yaml"
    state.write_text(content)
    result = invoke("render", str(RICH), "--now", NOW.isoformat(), "--rollout-state", str(state))
    assert result.exit_code == 2, result.stderr
    assert f"{state}:1:1: rollout state: {needle}" in result.stderr
    assert result.stdout == ""


def test_render_accepts_the_last_step(tmp_path: Path) -> None:
    state = tmp_path / "state.yaml"
    state.write_text("shop/catalog: 2\nlegacy/ledger: 0\n")
    result = invoke("render", str(RICH), "--now", NOW.isoformat(), "--rollout-state", str(state))
    assert result.exit_code == 0, result.stderr


def test_plan_refuses_a_rollout_state_that_does_not_fit(tmp_path: Path) -> None:
    root = init_repo(tmp_path / "repo")
    shutil.copytree(RICH, root / "policies")
    commit_all(root, "rich")
    state = tmp_path / "state.yaml"
    args = ("--base", "main", "--repo", str(root), "--path", "policies", "--rollout-state")
    for content, needle in (("shop/nope: 1\n", "shop/nope"), ("shop/catalog: 3\n", "step 3")):
        state.write_text(content)
        result = meshc_plan(*args, str(state))
        assert result.code == 2, result.err
        assert f"--rollout-state {state}:1:1: rollout state: " in result.err
        assert needle in result.err and result.out == ""
    state.write_text("shop/catalog: 2\n")
    assert meshc_plan(*args, str(state)).code == 0


# --- 14: the root of a file argument ---------------------------------------------------------

SHOP = {
    "mesh.yaml": MESH,
    "shop/cart.yaml": """\
        apiVersion: meshc/v1
        kind: Service
        metadata: {name: cart, namespace: shop}
        spec:
          ports: [{name: http, port: 80, targetPort: 8080, protocol: http}]
          calls: [catalog]
        """,
    "catalog.yaml": """\
        apiVersion: meshc/v1
        kind: Service
        metadata: {name: catalog, namespace: shop}
        spec:
          ports: [{name: http, port: 80, targetPort: 8080, protocol: http}]
        ---
        apiVersion: meshc/v1
        kind: AccessPolicy
        metadata: {name: catalog, namespace: shop}
        spec:
          service: catalog
          rules: [{from: [{service: cart}]}]
        """,
}


def test_file_argument_takes_the_root_holding_the_mesh(tmp_path: Path) -> None:
    nested = write_tree(tmp_path / "nested", SHOP)
    whole = invoke("lint", str(nested), "--now", NOW.isoformat())
    assert whole.exit_code == 0, whole.stdout
    one = invoke("lint", str(nested / "shop" / "cart.yaml"), "--now", NOW.isoformat())
    assert one.exit_code == 0, one.stdout
    assert "MC306" not in one.stdout and "MC201" not in one.stdout


def test_folder_argument_is_the_root_itself(tmp_path: Path) -> None:
    nested = write_tree(tmp_path / "nested", SHOP)
    result = invoke("lint", str(nested / "shop"), "--now", NOW.isoformat())
    assert result.exit_code == 1 and "MC201" in result.stdout


# --- 16: Ctrl-C ------------------------------------------------------------------------------


def test_interrupt_during_a_command_exits_130_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import compiler.cli.lint as lint_module

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(lint_module, "compile_with_cache", interrupted)
    monkeypatch.setattr(sys, "argv", ["meshc", "lint", str(REPO / "policies")])
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 130
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert signal.getsignal(signal.SIGINT) is before


_SIGINT_DURING_IMPORT = textwrap.dedent(
    """
    import importlib.abc, os, signal, sys

    class Interrupt(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "compiler.cli.lint":
                os.kill(os.getpid(), signal.SIGINT)
            return None

    sys.meta_path.insert(0, Interrupt())
    sys.argv = ["meshc", "lint", "policies"]
    from compiler.cli import main
    main()
    """
)


def test_interrupt_during_start_up_exits_130_quietly() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _SIGINT_DURING_IMPORT],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 130, result.stderr
    assert result.stdout == "" and result.stderr == ""


def test_sigint_while_linting_exits_130_quietly(tmp_path: Path) -> None:
    """A real signal through the real console script, once it is past start-up."""
    script = textwrap.dedent(
        """
        import os, signal, sys
        sys.argv = ["meshc", "lint", "policies"]
        import compiler.cli.lint as lint
        real = lint.compile_with_cache
        def slow(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGINT)
            return real(*args, **kwargs)
        lint.compile_with_cache = slow
        from compiler.cli import main
        main()
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 130, result.stdout + result.stderr
    assert result.stdout == "" and result.stderr == ""
