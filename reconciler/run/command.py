"""`meshd run`: follow a Git repository and keep a target serving its last good revision.

The command assembles the one reconcile loop (`reconciler.loop.Reconciler`) from a Git
source and a target, with its state in `--state DIR`; the verbs Flux users know —
`meshd suspend`, `resume`, `reconcile` — act on that state from another shell.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from reconciler.errors import MeshdError
from reconciler.state import StateStore, check_state_dir, default_state_dir

if TYPE_CHECKING:
    from reconciler.loop import PassOutcome, Reconciler
    from reconciler.source.git import GitRepositorySource

log = logging.getLogger("meshd.run")


class RunUsageError(MeshdError):
    code = 2


def _seconds(text: str) -> float:
    from reconciler.ca.store import ttl

    try:
        value = ttl(text).total_seconds()
    except ValueError:
        value = 0.0
    if value <= 0:
        raise RunUsageError(f"--interval {text!r}: not a positive duration; write e.g. 30s or 5m")
    return value


def _address(text: str, flag: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise RunUsageError(f"{flag} {text!r}: write HOST:PORT, e.g. 127.0.0.1:18000")
    return host, int(port)


def _state_store(repo: str, state: Path | None) -> StateStore:
    directory = state if state is not None else default_state_dir(_repo_key(repo))
    check_state_dir(directory)
    return StateStore(directory)


def _repo_key(repo: str) -> str:
    """Local paths are keyed by their absolute form, so `.` and `/abs` share a state."""
    candidate = Path(repo)
    return str(candidate.resolve()) if candidate.exists() else repo


def _read_secret_file(path: Path | None, flag: str) -> bytes | None:
    if path is None:
        return None
    try:
        secret = path.read_bytes().strip()
    except OSError as exc:
        raise RunUsageError(f"{flag} {path}: cannot read it ({exc.strerror})") from None
    if not secret:
        raise RunUsageError(f"{flag} {path}: empty; put the shared secret in it")
    return secret


def _steps_reader(path: Path | None) -> Callable[[], Mapping[str, int]] | None:
    if path is None:
        return None

    def read() -> Mapping[str, int]:
        from compiler.lower.rollout_state import RolloutStateError, parse_rollout_state

        try:
            return parse_rollout_state(str(path), path.read_bytes())
        except OSError as exc:
            raise MeshdError(f"--rollout-state {path}: cannot read it ({exc.strerror})") from None
        except RolloutStateError as exc:
            raise MeshdError(f"--rollout-state {exc}") from None

    read()  # a bad file is a usage error at start, not a failed pass later
    return read


@click.command("run")
@click.option("--repo", required=True, metavar="URL|DIR", help="The Git repository to follow.")
@click.option("--ref", default=None, metavar="BRANCH|TAG", help="Default: the remote's HEAD.")
@click.option("--path", "policy_path", default="", metavar="SUBDIR", help="The policy root.")
@click.option(
    "--target",
    type=click.Choice(["directory", "xds", "kubernetes"]),
    required=True,
    help="Where to apply.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="directory target: the folder (what `meshc render --out` writes).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["yaml", "json"]),
    default="yaml",
    show_default=True,
    help="directory target: the files' format.",
)
@click.option(
    "--xds-listen",
    default="127.0.0.1:18000",
    show_default=True,
    help="xds target: where the control plane listens (mutual TLS).",
)
@click.option(
    "--ca-state",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="xds target: the CA key store (`meshd ca init`); kubernetes: apply its cacerts.",
)
@click.option(
    "--kubeconfig",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="kubernetes target [default: KUBECONFIG, ~/.kube/config, in-cluster].",
)
@click.option("--context", default=None, help="kubernetes target: the kubeconfig context.")
@click.option(
    "--force-conflicts",
    is_flag=True,
    help="kubernetes target: take fields another field manager owns.",
)
@click.option(
    "--preflight/--no-preflight",
    default=True,
    show_default=True,
    help="kubernetes target: check the cluster before applying (CRDs, workloads, owners).",
)
@click.option(
    "--leader-elect",
    is_flag=True,
    help="kubernetes target: write only while holding a Lease (run N replicas).",
)
@click.option(
    "--serve-xds",
    is_flag=True,
    help="kubernetes target: also serve xDS on --xds-listen (every replica, leader or not).",
)
@click.option("--lease-name", default=None, help="kubernetes target: the Lease [default: meshd].")
@click.option(
    "--lease-namespace", default=None, help="kubernetes target: its namespace [default: the pod's]."
)
@click.option(
    "--identity", default=None, help="kubernetes target: this replica's name in the Lease."
)
@click.option("--interval", default="30s", show_default=True, help="Time between fetches.")
@click.option("--once", is_flag=True, help="One pass, then exit (1 when the revision is refused).")
@click.option(
    "--state",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="State directory [default: $XDG_STATE_HOME/meshd/<repo-id>].",
)
@click.option("--no-prune", is_flag=True, help="Keep objects the repository no longer holds.")
@click.option(
    "--fail-on",
    type=click.Choice(["error", "warning"]),
    default="error",
    show_default=True,
    help="Refuse revisions with findings of this severity.",
)
@click.option(
    "--rollout-state",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="YAML/JSON '<namespace>/<rollout>: <step>', re-read every pass.",
)
@click.option(
    "--listen",
    default=None,
    metavar="HOST:PORT",
    help="Serve /healthz, /readyz, /metrics and POST /hook here.",
)
@click.option(
    "--webhook-secret-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Shared secret for POST /hook (X-Hub-Signature-256).",
)
@click.option(
    "--token-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="HTTPS credentials: a token or user:token.",
)
@click.option("--ssh-key-file", type=click.Path(path_type=Path, dir_okay=False), default=None)
@click.option("--known-hosts-file", type=click.Path(path_type=Path, dir_okay=False), default=None)
@click.option(
    "--allowed-signers",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Apply only commits SSH-signed by a key in this allowed-signers file.",
)
@click.option(
    "--gpg-keys",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Apply only commits GPG-signed by one of these armored public keys.",
)
def run_command(**options: Any) -> None:
    """Follow --repo and keep --target serving its last good revision (Ctrl-C stops)."""
    logging.basicConfig(level=logging.INFO, format="meshd: %(message)s", stream=sys.stderr)
    code = asyncio.run(_run(**options))
    raise SystemExit(code)


async def _run(**o: Any) -> int:
    # Imported here: `meshd --version` and the other commands do not pay for the compiler.
    from compiler.diagnostics import Severity
    from reconciler.loop import Reconciler
    from reconciler.source.git import Credentials, GitRepositorySource
    from reconciler.source.signatures import SignaturePolicy

    store = _state_store(o["repo"], o["state"])
    source = GitRepositorySource(
        o["repo"],
        mirror_dir=store.directory / "mirror.git",
        ref=o["ref"],
        path=o["policy_path"],
        credentials=Credentials(o["token_file"], o["ssh_key_file"], o["known_hosts_file"]),
        signatures=(
            SignaturePolicy(o["allowed_signers"], o["gpg_keys"])
            if o["allowed_signers"] or o["gpg_keys"]
            else None
        ),
    )
    source.interval = _seconds(o["interval"])
    source.requested = store.take_request
    secret = _read_secret_file(o["webhook_secret_file"], "--webhook-secret-file")
    steps = _steps_reader(o["rollout_state"])
    async with _target(o, store, source.trigger) as (target, target_metrics):
        reconciler = Reconciler(
            source,
            target,
            read_steps=steps,
            store=store,
            fail_on=Severity.WARNING if o["fail_on"] == "warning" else Severity.ERROR,
        )
        if o["once"]:
            outcome = await reconciler.reconcile()
            _print(outcome)
            return 0 if outcome.ok else 1
        return await _serve(reconciler, source, store, o["listen"], secret, target_metrics)


@contextlib.asynccontextmanager
async def _target(o: Any, store: StateStore, wake: Callable[[], None]) -> Any:
    """The target named by --target, built and torn down around the loop."""
    if o["target"] == "directory":
        if o["out"] is None:
            raise RunUsageError("--target directory needs --out DIR (the folder to write)")
        from reconciler.targets.directory import DirectoryTarget

        inventory = store.load().inventory
        yield (
            DirectoryTarget(o["out"], fmt=o["fmt"], inventory=inventory, prune=not o["no_prune"]),
            (lambda: ""),
        )
        return
    if o["target"] == "kubernetes":
        from reconciler.kube.run import kubernetes_run_target

        async with kubernetes_run_target(o, store, wake) as target:
            if not o["serve_xds"]:
                yield target, target.metrics_text
                return
            from reconciler.targets.fanout import FanOut

            async with _xds_target(o, "--serve-xds") as (xds, xds_metrics):
                yield FanOut(target, xds), lambda: target.metrics_text() + xds_metrics()
        return
    if o["serve_xds"]:
        raise RunUsageError("--serve-xds goes with --target kubernetes (xds serves already)")
    async with _xds_target(o, "--target xds") as served:
        yield served


@contextlib.asynccontextmanager
async def _xds_target(o: Any, flag: str) -> Any:
    """The embedded control plane on --xds-listen, issuing from --ca-state."""
    if o["ca_state"] is None:
        raise RunUsageError(f"{flag} needs --ca-state DIR (create one with `meshd ca init`)")
    from reconciler.ca.service import CAService
    from reconciler.ca.store import read_passphrase
    from reconciler.targets.xds import XdsTarget
    from reconciler.xds.server import XdsServer

    host, port = _address(o["xds_listen"], "--xds-listen")
    server = XdsServer(CAService(o["ca_state"], read_passphrase(None)))
    try:
        bound = await server.start(host, port, _control_plane_identity(o["ca_state"]))
    except OSError as exc:
        raise MeshdError(str(exc)) from None
    try:
        yield XdsTarget(server, address=f"{host}:{bound}"), server.metrics_text
    finally:
        await server.stop()


def _control_plane_identity(ca_state: Path) -> str:
    from reconciler.up.credentials import control_plane_id

    trust_domain = _trust_domain(ca_state)
    return control_plane_id(trust_domain)


def _trust_domain(ca_state: Path) -> str:
    from reconciler.ca.store import open_store, read_passphrase

    return open_store(ca_state, passphrase=read_passphrase(None)).state.trust_domain


async def _serve(
    reconciler: Reconciler,
    source: GitRepositorySource,
    store: StateStore,
    listen: str | None,
    secret: bytes | None,
    target_metrics: Callable[[], str],
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    runner = None
    if listen is not None:
        from aiohttp import web

        from reconciler.run.http import Endpoints

        host, port = _address(listen, "--listen")
        endpoints = Endpoints(lambda: reconciler.state, source.trigger, secret, target_metrics)
        runner = web.AppRunner(endpoints.app(), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            raise MeshdError(f"--listen {listen}: cannot listen ({exc.strerror})") from None
        log.info("serving /healthz /readyz /metrics /hook on %s", listen)
    try:
        await reconciler.run(stop=stop, on_pass=_print, suspended=lambda: store.suspended)
    finally:
        if runner is not None:
            await runner.cleanup()
    return 0


def _print(outcome: PassOutcome) -> None:
    revision = (outcome.revision or "no revision")[:12]
    line = f"{revision}: {outcome.reason} in {outcome.seconds:.2f}s"
    for part, message in sorted(outcome.rejected.items()):
        line += f"\n  rejected by {part}: {message}"
    for part in outcome.pending:
        line += f"\n  no answer from {part}"
    for finding in (*outcome.findings, *outcome.notes):
        line += f"\n  {finding}"
    click.echo(line, err=not outcome.ok)


def _store_option(function: Any) -> Any:
    function = click.option(
        "--state",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        help="State directory (default: from --repo).",
    )(function)
    return click.option(
        "--repo", default=None, metavar="URL|DIR", help="The repository `meshd run` follows."
    )(function)


def store_for(repo: str | None, state: Path | None) -> StateStore:
    if repo is None and state is None:
        raise RunUsageError("name the reconciler with --repo URL|DIR or --state DIR")
    return _state_store(repo or "", state) if state is None else StateStore(state)


@click.command("suspend")
@_store_option
def suspend_command(repo: str | None, state: Path | None) -> None:
    """Pause `meshd run`'s passes (the target keeps what it serves)."""
    store_for(repo, state).suspend(True)
    click.echo("suspended: no pass runs until `meshd resume`")


@click.command("resume")
@_store_option
def resume_command(repo: str | None, state: Path | None) -> None:
    """Resume `meshd run`'s passes, and ask for one now."""
    found = store_for(repo, state)
    found.suspend(False)
    found.request_pass()
    click.echo("resumed: a pass starts at once")


@click.command("reconcile")
@_store_option
def reconcile_command(repo: str | None, state: Path | None) -> None:
    """Ask `meshd run` for a pass now (fetch, compile, apply)."""
    store_for(repo, state).request_pass()
    click.echo("requested: the running loop starts a pass within a second")
