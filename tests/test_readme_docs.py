"""What a new user needs from the README and the set-up scripts (issue items 18)."""

from __future__ import annotations

import tomllib

from tests.helpers import REPO

README = (REPO / "README.md").read_text()


def test_readme_documents_plan_flags_exit_codes_crds_and_state() -> None:
    assert "[--repo DIR] [--path SUBDIR]" in README
    assert "### Exit codes" in README and "| `plan` |" in README and "130" in README
    assert "crd-all.gen.yaml" in README and "kubectl get crd -o yaml" in README
    assert "ignore[MC404, MC205]" in README
    assert "step indexes start at 0" in README
    assert "--allow-empty" in README and "`kind: Mesh` document" in README


def test_demo_installs_runtime_only_and_tests_install_tools() -> None:
    demo = (REPO / "scripts" / "demo.sh").read_text()
    test = (REPO / "scripts" / "test.sh").read_text()
    bootstrap = (REPO / "scripts" / "bootstrap.sh").read_text()
    assert "bash scripts/bootstrap.sh\n" in demo and "bootstrap.sh test" not in demo
    assert "bash scripts/bootstrap.sh test" in test
    assert 'pip install --quiet -e ".$extras"' in bootstrap


def test_license_is_an_spdx_string() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["license"] == "Apache-2.0"
    assert "setuptools>=77" in project["build-system"]["requires"]
