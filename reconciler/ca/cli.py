"""`meshd ca init|status|rotate|issue|bundle|ack`: the CA from the command line.

The clock is read once per command (or taken from `--now`, for tests and demos) and
passed down. Output is public material only; key files stay in the `--state` directory.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from cryptography import x509

from compiler.kinds.common import DURATION_RE
from reconciler.ca import meshfile
from reconciler.ca.consumers import Consumer, read_file_consumers, write_file_ack
from reconciler.ca.errors import REFUSED, CAError
from reconciler.ca.issue import KeyAlgorithm, pem
from reconciler.ca.leaves import check_store_times, issue_leaf, spiffe_id_for
from reconciler.ca.outputs import DEFAULT_REFRESH_HINT, spiffe_bundle, trust_bundle_pem
from reconciler.ca.rotation import advance, auto_advance, renew_intermediates, start_rotation
from reconciler.ca.state import Phase, Settings
from reconciler.ca.status import ca_status_snapshot, metrics_text, render_text, warnings
from reconciler.ca.store import (
    KeyStore,
    create_store,
    open_store,
    read_passphrase,
    require_state_dir,
    ttl,
)

F = TypeVar("F", bound=Callable[..., Any])


class NowType(click.ParamType[datetime]):
    """An RFC 3339 time (naive = UTC): `--now` for tests and demos."""

    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        try:
            parsed = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"{value!r} is not a time; use RFC 3339, e.g. 2026-11-25T12:00:00Z")
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def resolve_now(now: datetime | None) -> datetime:
    """The clock is read once per command, here, and passed down."""
    return now if now is not None else datetime.now(UTC).replace(microsecond=0)


def _common(function: F) -> F:
    options = [
        click.option(
            "--state",
            "state_dir",
            required=True,
            envvar="MESHD_CA_STATE",
            type=click.Path(path_type=Path, file_okay=False),
            help="The key store directory (0700). Env: MESHD_CA_STATE.",
        ),
        click.option(
            "--now",
            type=NowType(),
            default=None,
            help="The time to act at (default: the current time).",
        ),
        click.option(
            "--passphrase-file",
            type=click.Path(path_type=Path, dir_okay=False),
            default=None,
            help="File whose first line encrypts keys at rest (or set MESHD_CA_PASSPHRASE).",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _mesh_option(function: F) -> F:
    return click.option(
        "--mesh",
        "mesh_path",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="The file holding the Mesh document (Git's public side of the CA).",
    )(function)


def _acks_option(function: F) -> F:
    return click.option(
        "--acks",
        "acks_dir",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        help="Directory of consumer acknowledgements (default: STATE/acks).",
    )(function)


def _lock(state_dir: Path) -> None:
    """Hold the store's writer lock until the command ends."""
    from reconciler.ca.fsutil import exclusive_lock

    click.get_current_context().with_resource(exclusive_lock(state_dir))


def _open(state_dir: Path, passphrase_file: Path | None, now: datetime) -> KeyStore:
    """Lock, then open: `open_store` finishes interrupted writes, which only the lock
    holder may do (every command locks, reads included; operations are short)."""
    require_state_dir(state_dir)  # before the lock, which would create the directory
    _lock(state_dir)
    store = open_store(state_dir, passphrase=read_passphrase(passphrase_file))
    _check_clock(store, now)
    return store


def _check_clock(store: KeyStore, now: datetime) -> None:
    """A not-before in the future means this clock (or the issuing one) is wrong."""
    for record in store.state.active_roots():
        paths = (store.root_cert_path(record.name), store.intermediate_paths(record.name)[0])
        for path in paths:
            cert = store.certificate(path)
            if cert.not_valid_before_utc > now:
                raise CAError(
                    f"certificate is not valid before {cert.not_valid_before_utc.isoformat()}, "
                    f"after the current time {now.isoformat()} (clock skew?)",
                    path=path,
                    remedy="fix the clock of this machine (or of the one that made it)",
                )


def _load_mesh(path: Path | None, store: KeyStore | None) -> meshfile.MeshFile | None:
    if path is None:
        return None
    mesh = meshfile.load_mesh(path)
    if store is not None:
        meshfile.check_mesh_against_store(mesh, store)
        if mesh.spec.ca is not None:
            store.state.settings = _settings(mesh)
    return mesh


def _settings(mesh: meshfile.MeshFile | None) -> Settings:
    ca = mesh.spec.ca if mesh else None
    if ca is None:
        return Settings()
    return Settings(
        root_ttl=ca.root_ttl,
        intermediate_ttl=ca.intermediate_ttl,
        workload_ttl=ca.workload_ttl,
        renew_before=ca.renew_before,
    )


def _consumers(store: KeyStore, acks_dir: Path | None) -> list[Consumer]:
    return read_file_consumers(acks_dir or store.acks_dir)


def _propose(store: KeyStore, mesh: meshfile.MeshFile | None, write: bool) -> None:
    """Show (and with --write apply) the Mesh.spec.ca edit matching the store."""
    if mesh is None:
        if write:
            raise CAError("--write needs --mesh FILE", remedy="name the Mesh file to edit")
        click.echo("Put this in Mesh.spec (or pass --mesh FILE to see it as a diff):")
        click.echo(meshfile.ca_snippet(store), nl=False)
        return
    new_text = meshfile.proposed_text(mesh, store)
    diff = meshfile.mesh_diff(mesh, new_text)
    if not diff:
        click.echo(f"{mesh.path}: Mesh.spec.ca already matches the key store")
        return
    click.echo(diff, nl=False)
    if write:
        meshfile.write_mesh(mesh, new_text)
        click.echo(f"wrote {mesh.path}; review and commit it")
    else:
        click.echo("(pass --write to apply this edit to the file)")


@click.group("ca")
def ca_command() -> None:
    """The mesh certificate authority: keys, trust bundles and root rotation."""


@ca_command.command("init")
@_common
@_mesh_option
@click.option("--trust-domain", default=None, help="Default: the Mesh's, else cluster.local.")
@click.option("--name", "root_name", default="root-1", show_default=True, help="Root name.")
@click.option(
    "--key-algorithm",
    type=click.Choice([a.value for a in KeyAlgorithm]),
    default=KeyAlgorithm.ECDSA_P256.value,
    show_default=True,
)
@click.option("--write", is_flag=True, help="Apply the proposed Mesh edit to --mesh FILE.")
@click.option(
    "--external-leaves",
    is_flag=True,
    help="Leaves are issued elsewhere (istiod with the cacerts plug-in): the "
    "rotation's second gate waits workloadTTL after the switch.",
)
def init_command(
    state_dir: Path,
    now: datetime | None,
    passphrase_file: Path | None,
    mesh_path: Path | None,
    trust_domain: str | None,
    root_name: str,
    key_algorithm: str,
    write: bool,
    external_leaves: bool,
) -> None:
    """Create the key store: a root CA and its intermediate."""
    when = resolve_now(now)
    mesh = _load_mesh(mesh_path, None)
    domain = trust_domain or (mesh.spec.trust_domain if mesh else "cluster.local")
    if mesh and mesh.spec.trust_domain != domain:
        raise CAError(
            f"--trust-domain {domain!r} differs from the Mesh's {mesh.spec.trust_domain!r}",
            path=mesh_path,
            remedy="drop --trust-domain or fix spec.trustDomain",
        )
    from reconciler.ca.rotation import ROOT_NAME

    if not ROOT_NAME.match(root_name):
        raise CAError(f"root name {root_name!r} is not a DNS label", remedy="use e.g. root-2026")
    _lock(state_dir)
    store = create_store(
        state_dir,
        trust_domain=domain,
        algorithm=KeyAlgorithm(key_algorithm),
        settings=_settings(mesh),
        root_name=root_name,
        passphrase=read_passphrase(passphrase_file),
        now=when,
        external_leaves=external_leaves,
    )
    record = store.state.root(root_name)
    click.echo(
        f"created root {root_name} ({record.fingerprint}) and its intermediate in {state_dir}"
    )
    _propose(store, mesh, write)


@ca_command.command("status")
@_common
@_mesh_option
@_acks_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "prometheus"]),
    default="text",
    show_default=True,
    help="json: the keyless ca-status snapshot for `meshc plan --ca-status`.",
)
def status_command(
    state_dir: Path,
    now: datetime | None,
    passphrase_file: Path | None,
    mesh_path: Path | None,
    acks_dir: Path | None,
    fmt: str,
) -> None:
    """Show each CA certificate, the rotation phase and its gate; warn before expiry."""
    when = resolve_now(now)
    store = _open(state_dir, passphrase_file, when)
    mesh = _load_mesh(mesh_path, store)
    if fmt == "json":
        click.echo(json.dumps(ca_status_snapshot(store, when), indent=2, sort_keys=True))
        return
    if fmt == "prometheus":
        click.echo(metrics_text(store, when), nl=False)
        return
    extra = meshfile.drift(mesh, store) if mesh else []
    click.echo(render_text(store, _consumers(store, acks_dir), when, extra=extra), nl=False)
    if any("EXPIRED" in w for w in warnings(store, when)):
        sys.exit(REFUSED)


@ca_command.command("rotate")
@_common
@_mesh_option
@_acks_option
@click.option(
    "--auto",
    "automatic",
    is_flag=True,
    help="Advance every phase whose gate holds, renew due intermediates; never "
    "starts a rotation or forces.",
)
@click.option("--force", is_flag=True, help="Emergency: advance even if the gate does not hold.")
@click.option("--intermediate", is_flag=True, help="Renew the intermediates now.")
@click.option("--new-name", default=None, help="Name of the new root (default root-N).")
@click.option("--write", is_flag=True, help="Apply the proposed Mesh edit to --mesh FILE.")
@click.option(
    "--mesh-only",
    is_flag=True,
    help="Change no phase: only show (or --write) the Mesh edit for the current one.",
)
def rotate_command(
    state_dir: Path,
    now: datetime | None,
    passphrase_file: Path | None,
    mesh_path: Path | None,
    acks_dir: Path | None,
    automatic: bool,
    force: bool,
    intermediate: bool,
    new_name: str | None,
    write: bool,
    mesh_only: bool,
) -> None:
    """Start a root rotation, or move it to its next phase once the gate holds.

    Each step prints the matching `Mesh.spec.ca` edit (a diff with --mesh FILE; --write
    applies it, keeping comments) for review and commit."""
    when = resolve_now(now)
    store = _open(state_dir, passphrase_file, when)
    mesh = _load_mesh(mesh_path, store)
    if automatic and force:
        raise CAError("--auto never forces", remedy="drop --force, or run without --auto")
    if mesh_only:
        pass
    elif intermediate:
        for line in renew_intermediates(store, now=when, force=True):
            click.echo(line)
    elif automatic:
        steps = auto_advance(store, _consumers(store, acks_dir), now=when)
        click.echo("\n".join(steps) if steps else "nothing to do: no gate holds yet")
    else:
        rotation = store.state.rotation
        if rotation is None or rotation.phase is Phase.TRUST_NEW_ONLY:
            click.echo(start_rotation(store, now=when, new_name=new_name).summary)
        else:
            step = advance(store, _consumers(store, acks_dir), now=when, force=force)
            if step.skipped:
                click.echo(f"warning: {step.skipped}", err=True)
            click.echo(step.summary)
    _propose(store, mesh, write)


@ca_command.command("issue")
@_common
@click.option("--spiffe-id", default=None, help="spiffe://<trust-domain>/ns/<ns>/sa/<sa>")
@click.option("--namespace", default=None, help="With --service-account, instead of --spiffe-id.")
@click.option("--service-account", default=None)
@click.option("--ttl", "ttl_text", default=None, help="Lifetime (default: workloadTTL).")
@click.option(
    "--csr",
    "csr_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Sign this PEM CSR's key (the workload keeps its key); its names are ignored.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Write cert.pem and chain.pem (public) here instead of printing them.",
)
def issue_command(
    state_dir: Path,
    now: datetime | None,
    passphrase_file: Path | None,
    spiffe_id: str | None,
    namespace: str | None,
    service_account: str | None,
    ttl_text: str | None,
    csr_path: Path | None,
    out_dir: Path | None,
) -> None:
    """Issue a workload certificate (X.509 SVID) from the active issuer."""
    when = resolve_now(now)
    store = _open(state_dir, passphrase_file, when)
    if spiffe_id is None:
        if not namespace or not service_account:
            raise CAError(
                "give --spiffe-id, or both --namespace and --service-account",
                remedy="e.g. --namespace bookinfo --service-account reviews",
            )
        spiffe_id = spiffe_id_for(store.state.trust_domain, namespace, service_account)
    lifetime = None
    if ttl_text is not None:
        if not DURATION_RE.match(ttl_text):
            raise CAError(f"--ttl {ttl_text!r} is not a duration", remedy="e.g. 24h or 90m")
        lifetime = ttl(ttl_text)
    csr = None
    if csr_path is not None:
        try:
            csr = x509.load_pem_x509_csr(csr_path.read_bytes())
        except (ValueError, OSError):
            raise CAError(
                "not a readable PEM certificate signing request",
                path=csr_path,
                remedy="pass a PEM CSR (-----BEGIN CERTIFICATE REQUEST-----)",
            ) from None
    leaf = issue_leaf(store, spiffe_id=spiffe_id, now=when, lifetime=lifetime, csr=csr)
    chain = pem(leaf.certificate) + b"".join(pem(c) for c in leaf.chain[:-1])
    summary = (
        f"issued {spiffe_id} serial {leaf.certificate.serial_number:x} from "
        f"{store.state.issuer}, not after {leaf.certificate.not_valid_after_utc.isoformat()}"
    )
    if leaf.key_path is not None:
        summary += f"; its key stays in the key store ({leaf.key_path})"
    if out_dir is not None:
        from reconciler.ca.fsutil import atomic_write

        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(out_dir / "cert.pem", pem(leaf.certificate), mode=0o644)
        atomic_write(out_dir / "chain.pem", chain, mode=0o644)
        click.echo(summary)
        click.echo(f"wrote {out_dir / 'cert.pem'} and {out_dir / 'chain.pem'}")
        return
    click.echo(summary, err=True)
    click.echo(chain.decode(), nl=False)


@ca_command.command("bundle")
@_common
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["pem", "spiffe"]),
    default="pem",
    show_default=True,
    help="pem: xDS validation context; spiffe: JWKS bundle.",
)
@click.option(
    "--refresh-hint",
    type=click.IntRange(min=1),
    default=DEFAULT_REFRESH_HINT,
    show_default=True,
    help="spiffe_refresh_hint, seconds.",
)
def bundle_command(
    state_dir: Path,
    now: datetime | None,
    passphrase_file: Path | None,
    fmt: str,
    refresh_hint: int,
) -> None:
    """Print the trust bundle (every trusted root)."""
    when = resolve_now(now)
    store = _open(state_dir, passphrase_file, when)
    check_store_times(store, when)
    if fmt == "spiffe":
        bundle = spiffe_bundle(store, refresh_hint=refresh_hint)
        click.echo(json.dumps(bundle, indent=2, sort_keys=True))
    else:
        click.echo(trust_bundle_pem(store).decode(), nl=False)


@ca_command.command("ack")
@_common
@_acks_option
@click.argument("consumer")
@click.option(
    "--root",
    "roots",
    multiple=True,
    help="A fingerprint the consumer trusts (repeatable; default: the current bundle).",
)
def ack_command(
    state_dir: Path,
    now: datetime | None,
    passphrase_file: Path | None,
    acks_dir: Path | None,
    consumer: str,
    roots: tuple[str, ...],
) -> None:
    """Record (file-based) that CONSUMER validates peers with these roots."""
    when = resolve_now(now)
    store = _open(state_dir, passphrase_file, when)
    prints = list(roots) or [store.state.root(n).fingerprint for n in store.state.trusted]
    path = write_file_ack(acks_dir or store.acks_dir, consumer, prints)
    click.echo(f"{consumer}: acknowledged {len(prints)} root(s) in {path}")
