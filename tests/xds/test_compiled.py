"""The contract end to end: what the Envoy backend compiles for bookinfo, served by the
control plane to real Envoys, is accepted by every one of them (every type ACKed, the SDS
secrets active, no NACK)."""

from __future__ import annotations

import contextlib
import dataclasses
from datetime import UTC, datetime
from pathlib import Path

from compiler.api import load_tree
from compiler.load.discover import PolicyTree
from compiler.model.placement import Address, InstancePlacement, Placement
from reconciler.xds import XdsServer, bootstrap, write_client_files
from tests.lower.envoy.support import compile_placed, fixed_placement, snapshots_of
from tests.lower.support import BOOKINFO
from tests.xds.fakes import run
from tests.xds.support import CONTROL_PLANE, free_port, new_ca, run_envoy

TYPES = ("CDS", "EDS", "LDS", "RDS", "SDS")


def _fresh() -> Address:
    return Address("127.0.0.1", free_port())


def free_placement(placement: Placement) -> Placement:
    """The fixed test placement moved to ports the OS says are free now."""

    def move(instance: InstancePlacement) -> InstancePlacement:
        return dataclasses.replace(
            instance,
            inbound={port: _fresh() for port in instance.inbound},
            app={port: _fresh() for port in instance.app},
            outbound=_fresh() if instance.outbound else None,
            tcp_outbound={key: _fresh() for key in instance.tcp_outbound},
        )

    return {node: move(instance) for node, instance in placement.items()}


def test_every_bookinfo_proxy_accepts_what_the_backend_compiled(tmp_path: Path) -> None:
    _all_accept(load_tree(BOOKINFO), tmp_path)


def test_a_header_regex_lint_accepts_is_accepted_by_envoy(tmp_path: Path) -> None:
    """Envoy's default RE2 budget (100) is below lint's (Istio's 32768): the bootstrap
    raises it, or this A/B rule would be NACKed (program size 139)."""
    policy_tree = load_tree(BOOKINFO)
    reviews = policy_tree.files["reviews.yaml"].decode()
    regex = "headers: {end-user: {regex: '^[a-z]{1,40}[0-9]{2,30}$'}}"
    policy_tree.files["reviews.yaml"] = reviews.replace(
        "headers: {end-user: {exact: jason}}", regex
    ).encode()
    assert regex.encode() in policy_tree.files["reviews.yaml"]
    _all_accept(policy_tree, tmp_path)


def _all_accept(policy_tree: PolicyTree, tmp_path: Path) -> None:
    first = compile_placed(policy_tree)
    placement = free_placement(fixed_placement(first.model))
    snapshots = snapshots_of(compile_placed(policy_tree, placement=placement))
    assert len(snapshots) >= 4
    ca = new_ca(tmp_path / "ca")

    async def scenario() -> None:
        server = XdsServer(ca)
        port = await server.start("127.0.0.1", 0, CONTROL_PLANE)
        try:
            generation = server.set_snapshots(snapshots)
            with contextlib.ExitStack() as envoys:
                for index, (node_id, snapshot) in enumerate(sorted(snapshots.items())):
                    files = write_client_files(
                        ca, datetime.now(UTC), snapshot.identity, tmp_path / f"n{index}"
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
                    envoys.enter_context(run_envoy(config, tmp_path / f"envoy{index}"))
                result = await server.wait_acked(generation, timeout=30, wait_for_connect=True)
                assert result.nacked == {} and result.pending == ()
                assert sorted(result.acked) == sorted(snapshots)
                for proxy in server.status():
                    subscribed = {t: s.state for t, s in proxy.types.items()}
                    assert set(subscribed.values()) == {"SYNCED"}, (proxy.node_id, subscribed)
                    assert {"CDS", "LDS", "SDS"} <= set(subscribed), proxy.node_id
        finally:
            await server.stop()

    run(scenario, timeout=120)
