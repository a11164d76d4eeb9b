"""The rollback property on real Envoys: `meshd run`'s loop with the xds target, a Git
history A → B → revert B, and each connected Envoy's dynamic configuration after the
revert equal to what it held after A (versions and timestamps aside)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.loop import Reconciler
from reconciler.source.git import GitRepositorySource
from reconciler.state import StateStore
from reconciler.targets.xds import XdsTarget
from reconciler.xds import XdsServer, bootstrap, write_client_files
from tests.helpers import REPO
from tests.plan.gitrepo import commit_all, edit, git, init_repo
from tests.xds.support import CONTROL_PLANE, EnvoyProcess, free_port, new_ca, run_envoy

SERVED = ("details.bookinfo~v1~0", "ratings.bookinfo~v1~0", "reviews.bookinfo~v1~0")
"""The nodes given a real Envoy (one of them with the fixed outbound port 15001: on one
host, only one sidecar can own it)."""
KINDS = ("listeners", "clusters", "route_configs", "endpoint_configs")


def _repo(root: Path) -> Path:
    init_repo(root)
    shutil.copytree(REPO / "policies", root / "policies")
    for path in (root / "policies").glob("*.yaml"):
        text = re.sub(
            r"(v\d): \{labels: \{version: (v\d)\}\}",
            lambda m: (
                f'{m[1]}: {{labels: {{version: {m[2]}}}, endpoints: ["127.0.0.1:{free_port()}"]}}'
            ),
            path.read_text(),
        )
        path.write_text(text)
    commit_all(root, "A: bookinfo on this host")
    return root


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _strip(v)
            for k, v in value.items()
            if k not in ("version_info", "last_updated", "last_updated_time")
        }
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _dynamic(envoy: EnvoyProcess) -> dict[str, Any]:
    return {kind: _strip(envoy.dynamic(kind)) for kind in KINDS}


def test_revert_on_real_envoys(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "repo")
    ca = new_ca(tmp_path / "ca")

    async def scenario() -> None:
        server = XdsServer(ca)
        port = await server.start("127.0.0.1", 0, CONTROL_PLANE)
        source = GitRepositorySource(str(repo), mirror_dir=tmp_path / "mirror.git", path="policies")
        loop = Reconciler(
            source, XdsTarget(server, address=f"127.0.0.1:{port}"), store=StateStore(tmp_path / "s")
        )

        async def apply() -> None:
            outcome = await loop.reconcile()
            assert outcome.ok, outcome
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                result = server.convergence(server.generation)
                if set(SERVED) <= set(result.acked) and not result.nacked:
                    await asyncio.sleep(0.3)  # let Envoy finish warming what it ACKed
                    return
                await asyncio.sleep(0.05)
            raise AssertionError(f"not every Envoy ACKed: {server.convergence(server.generation)}")

        try:
            await loop.reconcile()
            with contextlib.ExitStack() as stack:
                envoys = []
                for node_id in SERVED:
                    snapshot = server.snapshot(node_id)
                    assert snapshot is not None, node_id
                    files = write_client_files(
                        ca, datetime.now(UTC), snapshot.identity, tmp_path / "creds" / node_id
                    )
                    config = bootstrap(
                        node_id=node_id,
                        cluster=snapshot.cluster,
                        xds_address="127.0.0.1",
                        xds_port=port,
                        control_plane_identity=CONTROL_PLANE,
                        files=files,
                        admin_port=0,
                    )
                    envoys.append(stack.enter_context(run_envoy(config, tmp_path / node_id)))
                await apply()
                after_a = [_dynamic(envoy) for envoy in envoys]
                reviews = repo / "policies" / "ratings.yaml"
                edit(reviews, "methods: [GET]", "methods: [GET, POST]")
                b = commit_all(repo, "B: reviews may POST to ratings")
                await apply()
                assert [_dynamic(envoy) for envoy in envoys] != after_a
                git(repo, "revert", "--no-edit", b)
                await apply()
                assert [_dynamic(envoy) for envoy in envoys] == after_a
        finally:
            await server.stop()

    asyncio.run(asyncio.wait_for(scenario(), timeout=150))
