"""The real `meshd` process: a closed stdout, and what `--version` has to import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from reconciler.ca.meshfile import load_mesh
from reconciler.ca.store import open_store
from tests.ca.support import MESH_YAML, meshd_inproc
from tests.helpers import BIN


def test_a_closed_stdout_neither_tracebacks_nor_loses_the_mesh_edit(tmp_path: Path) -> None:
    """`meshd ca rotate start --mesh m.yaml --write | head -1`: the reader is gone before
    we print, so the phase change and the Mesh edit must already be on disk."""
    state, mesh = tmp_path / "st", tmp_path / "mesh.yaml"
    mesh.write_text(MESH_YAML)
    for args in (("init",), ("consumer", "add", "edge", "--kind", "xds")):
        assert meshd_inproc("ca", *args, "--state", str(state)).returncode == 0
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `head` after its first line
    command = ["ca", "rotate", "start", "--state", str(state), "--mesh", str(mesh), "--write"]
    try:
        result = subprocess.run(
            [str(BIN / "meshd"), *command],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert result.returncode == 141, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert open_store(state, passphrase=None).state.rotation is not None
    spec = load_mesh(mesh).spec
    assert spec.ca is not None and [a.name for a in spec.ca.anchors] == ["root-1", "root-2"]


def test_version_imports_neither_the_compiler_nor_the_crypto(tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "from reconciler.cli import main\n"
        "try:\n"
        "    main(['--version'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in sys.modules if m.startswith(('compiler', 'cryptography', "
        "'pydantic', 'ruamel'))]\n"
        "print('HEAVY', sorted(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert "HEAVY []" in result.stdout, result.stdout
    assert "version" in result.stdout
    helped = meshd_inproc("ca", "rotate", "--help")
    assert helped.returncode == 0 and "start" in helped.stdout and "advance" in helped.stdout
