"""File names that are not UTF-8 or hold control characters reach every output escaped."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from tests.helpers import REPO, run_cli


def _tree_with_odd_names(root: Path) -> None:
    shutil.copytree(REPO / "policies", root)
    broken = b"apiVersion: meshc/v1\nkind: Rollout\nmetadata: {name: r}\nspec: {bogus: 1}\n"
    for name in (b"bad\xff.yaml", b"new\nline.yaml"):
        with open(os.path.join(os.fsencode(root), name), "wb") as out:
            out.write(broken)


def test_lint_escapes_odd_file_names_in_text_and_json(tmp_path: Path) -> None:
    root = tmp_path / "policies"
    _tree_with_odd_names(root)
    text = run_cli("meshc", "lint", str(root))
    assert text.returncode == 1, text.stderr
    assert "Traceback" not in text.stderr and "internal error" not in text.stderr
    assert "bad\\xff.yaml:" in text.stdout and "new\\nline.yaml:" in text.stdout
    report = json.loads(run_cli("meshc", "lint", str(root), "--format", "json").stdout)
    files = {finding["file"] for finding in report["findings"]}
    assert {"bad\\xff.yaml", "new\\nline.yaml"} <= files
