"""`meshd ca init|status|rotate|issue|bundle|ack|consumer`: the CA from the command line.

The clock is read once per command and passed down. `--now` moves only read-only commands
(status, bundle) in time: a command that writes the store acts at the real time, within
`MAX_SKEW`, so a typo cannot make certificates that start in the future. Tests move time
through the injected `Clock` (click's context object) instead.

Every command finishes its writes before it prints (a closed stdout must not stop a Mesh
edit half way) and checks its input before it writes (a refused command leaves the store
byte-identical). Output is public material only; key files stay in the `--state`
directory, except a workload key the user asks for with `issue --key-out`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from reconciler.ca.errors import REFUSED, CAError

if TYPE_CHECKING:
    from reconciler.ca import meshfile
    from reconciler.ca.consumers import Consumer
    from reconciler.ca.state import Settings
    from reconciler.ca.store import KeyStore

F = TypeVar("F", bound=Callable[..., Any])

MAX_SKEW = timedelta(minutes=5)
"""How far `--now` may stray from the real clock on a command that writes the store (the
backdate of every certificate, so a peer still accepts what such a command makes)."""


def _system_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True, slots=True)
class Clock:
    """The real clock of a command. Tests pass `Clock(lambda: t)` as click's `obj`."""

    read: Callable[[], datetime] = field(default=_system_now)


class NowType(click.ParamType[datetime]):
    """An RFC 3339 time (naive = UTC): `--now` for read-only commands, tests and demos."""

    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        try:
            parsed = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"{value!r} is not a time; use RFC 3339, e.g. 2026-11-25T12:00:00Z")
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _clock_now() -> datetime:
    context = click.get_current_context(silent=True)
    clock = context.find_object(Clock) if context is not None else None
    return (clock or Clock()).read()


def resolve_now(now: datetime | None, *, writes: bool) -> datetime:
    """The clock is read once per command, here, and passed down. A writing command refuses
    a `--now` away from the real clock: certificates made at a future time would make every
    later command fail until then (and past ones would be issued already expired)."""
    real = _clock_now()
    if now is None:
        return real
    if writes and abs(now - real) > MAX_SKEW:
        raise CAError(
            f"--now {now.isoformat()} is more than {MAX_SKEW.seconds // 60} minutes away "
            f"from the clock ({real.isoformat()}); commands that write the store act only "
            "at the current time",
            remedy="drop --now (it moves only status and bundle), or fix this machine's clock",
        )
    return now


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
            help="The time to act at (default: the clock). Commands that write the store "
            "accept only the current time (5 minutes skew).",
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


def _write_option(function: F) -> F:
    return click.option(
        "--write", is_flag=True, help="Apply the proposed Mesh edit to --mesh FILE."
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


def _open(
    state_dir: Path, passphrase_file: Path | None, now: datetime, *, writes: bool
) -> KeyStore:
    """Lock, then open: `open_store` finishes interrupted writes, which only the lock
    holder may do (every command locks, reads included; operations are short). It also
    checks a given passphrase against a stored key; a writing command needs one when the
    store is encrypted."""
    from reconciler.ca.store import (
        open_store,
        read_passphrase,
        require_state_dir,
        verify_passphrase,
    )

    passphrase = read_passphrase(passphrase_file)
    require_state_dir(state_dir)  # before the lock, which would create the directory
    _lock(state_dir)
    store = open_store(state_dir, passphrase=passphrase)
    if writes:
        verify_passphrase(store, required=True)
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
    from reconciler.ca import meshfile

    mesh = meshfile.load_mesh(path)
    if store is not None:
        meshfile.check_mesh_against_store(mesh, store)
        if mesh.spec.ca is not None:
            store.state.settings = _settings(mesh)
    return mesh


def _settings(mesh: meshfile.MeshFile | None) -> Settings:
    from reconciler.ca.state import Settings

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
    from reconciler.ca.consumers import read_file_consumers

    return read_file_consumers(acks_dir or store.acks_dir)


def _propose(
    store: KeyStore, mesh: meshfile.MeshFile | None, write: bool, *, state_dir: Path
) -> list[str]:
    """The Mesh.spec.ca edit matching the store, written first with --write; the lines to
    print come back so the caller prints only after every file is in place."""
    from reconciler.ca import meshfile

    if mesh is None:
        if write:
            raise CAError("--write needs --mesh FILE", remedy="name the Mesh file to edit")
        return [
            "Put this in Mesh.spec (see it as a diff with `meshd ca rotate mesh-edit "
            f"--state {state_dir} --mesh FILE`):",
            meshfile.ca_snippet(store).rstrip("\n"),
        ]
    new_text = meshfile.proposed_text(mesh, store)
    diff = meshfile.mesh_diff(mesh, new_text)
    if not diff:
        return [f"{mesh.path}: Mesh.spec.ca already matches the key store"]
    if write:
        meshfile.write_mesh(mesh, new_text)
        return [diff.rstrip("\n"), f"wrote {mesh.path}; review and commit it"]
    return [diff.rstrip("\n"), "(pass --write to apply this edit to the file)"]


def _check_writable_mesh(mesh_path: Path | None, write: bool) -> None:
    """Refuse `--write` without `--mesh` before any phase changes."""
    if write and mesh_path is None:
        raise CAError("--write needs --mesh FILE", remedy="name the Mesh file to edit")


def _echo(lines: list[str], *, err: bool = False) -> None:
    for line in lines:
        click.echo(line, err=err)


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
    type=click.Choice(["ecdsa-p256", "rsa-2048", "rsa-3072", "rsa-4096"]),
    default="ecdsa-p256",
    show_default=True,
)
@_write_option
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
    from reconciler.ca.issue import KeyAlgorithm
    from reconciler.ca.rotation import ROOT_NAME
    from reconciler.ca.store import check_trust_domain, create_store, read_passphrase

    when = resolve_now(now, writes=True)
    _check_writable_mesh(mesh_path, write)
    mesh = _load_mesh(mesh_path, None)
    domain = trust_domain or (mesh.spec.trust_domain if mesh else "cluster.local")
    check_trust_domain(domain)
    if mesh and mesh.spec.trust_domain != domain:
        raise CAError(
            f"--trust-domain {domain!r} differs from the Mesh's {mesh.spec.trust_domain!r}",
            path=mesh_path,
            remedy="drop --trust-domain or fix spec.trustDomain",
        )
    if not ROOT_NAME.match(root_name):
        raise CAError(f"root name {root_name!r} is not a DNS label", remedy="use e.g. root-2026")
    passphrase = read_passphrase(passphrase_file)
    _lock(state_dir)
    store = create_store(
        state_dir,
        trust_domain=domain,
        algorithm=KeyAlgorithm(key_algorithm),
        settings=_settings(mesh),
        root_name=root_name,
        passphrase=passphrase,
        now=when,
        external_leaves=external_leaves,
    )
    record = store.state.root(root_name)
    lines = _propose(store, mesh, write, state_dir=state_dir)
    click.echo(
        f"created root {root_name} ({record.fingerprint}) and its intermediate in {state_dir}"
    )
    _echo(lines)
    click.echo(
        "next: register each trust-bundle consumer with `meshd ca consumer add NAME --kind K` "
        "before a rotation"
    )


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
    from reconciler.ca import meshfile
    from reconciler.ca.status import ca_status_snapshot, metrics_text, render_text, warnings

    when = resolve_now(now, writes=False)
    store = _open(state_dir, passphrase_file, when, writes=False)
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


@ca_command.group("rotate")
def rotate_group() -> None:
    """Root rotation: `start` it, `advance` it gate by gate; renew intermediates.

    Each step prints the matching `Mesh.spec.ca` edit (a diff with --mesh FILE; --write
    applies it, keeping comments) for review and commit. docs/ca-rotation.md walks
    through a whole rotation."""


@rotate_group.command("start")
@_common
@_mesh_option
@_write_option
@click.option("--new-name", default=None, help="Name of the new root (default root-N).")
def rotate_start_command(
    state_dir: Path,
    now: datetime | None,
    passphrase_file: Path | None,
    mesh_path: Path | None,
    write: bool,
    new_name: str | None,
) -> None:
    """Start a root rotation: a new root that the bundle trusts next to the old one."""
    from reconciler.ca.rotation import start_rotation

    when = resolve_now(now, writes=True)
    _check_writable_mesh(mesh_path, write)
    store = _open(state_dir, passphrase_file, when, writes=True)
    mesh = _load_mesh(mesh_path, store)
    summary = start_rotation(store, now=when, new_name=new_name).summary
    lines = _propose(store, mesh, write, state_dir=state_dir)
    click.echo(summary)
    _echo(lines)


@rotate_group.command("advance")
@_common
@_mesh_option
@_write_option
@_acks_option
@click.option(
    "--auto",
    "automatic",
    is_flag=True,
    help="Advance every phase whose gate holds, renew due intermediates; never "
    "starts a rotation or forces.",
)
@click.option("--force", is_flag=True, help="Emergency: advance even if the gate does not hold.")
def rotate_advance_command(
    state_dir: Path,
    now: datetime | None,
    passphrase_file: Path | None,
    mesh_path: Path | None,
    write: bool,
    acks_dir: Path | None,
    automatic: bool,
    force: bool,
) -> None:
    """Move the rotation to its next phase once the gate holds (the switch to the new
    issuer also needs --mesh FILE whose anchors trust the new root)."""
    from reconciler.ca import meshfile
    from reconciler.ca.rotation import advance, auto_advance

    if automatic and force:
        raise CAError("--auto never forces", remedy="drop --force, or run without --auto")
    when = resolve_now(now, writes=True)
    _check_writable_mesh(mesh_path, write)
    store = _open(state_dir, passphrase_file, when, writes=True)
    mesh = _load_mesh(mesh_path, store)
    trusted = meshfile.git_trusted(mesh) if mesh else None
    consumers = _consumers(store, acks_dir)
    notes: list[str] = []
    if automatic:
        steps = auto_advance(store, consumers, now=when, git_trusted=trusted)
        summary = "\n".join(steps) if steps else "nothing to do: no gate holds yet"
    else:
        step = advance(store, consumers, now=when, force=force, git_trusted=trusted)
        notes = [f"warning: {step.skipped}"] if step.skipped else []
        summary = step.summary
    lines = _propose(store, mesh, write, state_dir=state_dir)
    _echo(notes, err=True)
    click.echo(summary)
    _echo(lines)


@rotate_group.command("intermediate")
@_common
def rotate_intermediate_command(
    state_dir: Path, now: datetime | None, passphrase_file: Path | None
) -> None:
    """Renew every active root's intermediate now."""
    from reconciler.ca.rotation import renew_intermediates

    when = resolve_now(now, writes=True)
    store = _open(state_dir, passphrase_file, when, writes=True)
    _echo(renew_intermediates(store, now=when, force=True))


@rotate_group.command("mesh-edit")
@_common
@_mesh_option
@_write_option
def rotate_mesh_edit_command(
    state_dir: Path,
    now: datetime | None,
    passphrase_file: Path | None,
    mesh_path: Path | None,
    write: bool,
) -> None:
    """Change no phase: show (or --write) the Mesh edit matching the store."""
    when = resolve_now(now, writes=write)
    _check_writable_mesh(mesh_path, write)
    store = _open(state_dir, passphrase_file, when, writes=False)
    mesh = _load_mesh(mesh_path, store)
    _echo(_propose(store, mesh, write, state_dir=state_dir))


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
    "--key-out",
    "key_out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Without --csr: make the workload key and write it here (PEM, mode 0600, "
    "unencrypted; an existing file is refused). One of --csr and --key-out is required.",
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
    key_out: Path | None,
    out_dir: Path | None,
) -> None:
    """Issue a workload certificate (X.509 SVID) from the active issuer."""
    from reconciler.ca.issue import generate_key, pem
    from reconciler.ca.leaves import issue_leaf, spiffe_id_for

    when = resolve_now(now, writes=True)
    lifetime = _lifetime(ttl_text)
    csr = _read_csr(csr_path)
    if (csr is None) == (key_out is None):
        raise CAError(
            "give exactly one of --csr (the workload keeps its key) and --key-out PATH "
            "(the key is made here and written there)",
            remedy="e.g. --key-out web.key",
        )
    if key_out is not None and key_out.exists():
        raise CAError("file exists", path=key_out, remedy="remove it or choose another path")
    store = _open(state_dir, passphrase_file, when, writes=True)
    if spiffe_id is None:
        if not namespace or not service_account:
            raise CAError(
                "give --spiffe-id, or both --namespace and --service-account",
                remedy="e.g. --namespace bookinfo --service-account reviews",
            )
        spiffe_id = spiffe_id_for(store.state.trust_domain, namespace, service_account)
    key = generate_key(store.state.key_algorithm) if key_out is not None else None
    leaf = issue_leaf(
        store,
        spiffe_id=spiffe_id,
        now=when,
        lifetime=lifetime,
        csr=csr,
        public_key=key.public_key() if key is not None else None,
    )
    chain = pem(leaf.certificate) + b"".join(pem(c) for c in leaf.chain[:-1])
    not_after = leaf.certificate.not_valid_after_utc
    notes = [
        f"issued {spiffe_id} serial {leaf.certificate.serial_number:x} from "
        f"{store.state.issuer}, not after {not_after.isoformat()}"
    ]
    if lifetime is not None and not_after < when + lifetime - timedelta(seconds=1):
        notes.append(
            f"note: --ttl {ttl_text} cut to the intermediate's expiry {not_after.isoformat()} "
            "(a leaf never outlives its issuer)"
        )
    from reconciler.ca.fsutil import atomic_write

    if key is not None and key_out is not None:
        atomic_write(key_out, _workload_key_bytes(key))
        notes.append(f"wrote the workload key to {key_out} (mode 0600)")
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(out_dir / "cert.pem", pem(leaf.certificate), mode=0o644)
        atomic_write(out_dir / "chain.pem", chain, mode=0o644)
        _echo(notes, err=True)
        click.echo(f"wrote {out_dir / 'cert.pem'} and {out_dir / 'chain.pem'}")
        return
    _echo(notes, err=True)
    click.echo(chain.decode(), nl=False)


def _lifetime(ttl_text: str | None) -> timedelta | None:
    from compiler.kinds.common import DURATION_RE
    from reconciler.ca.store import ttl

    if ttl_text is None:
        return None
    if not DURATION_RE.match(ttl_text):
        raise CAError(f"--ttl {ttl_text!r} is not a duration", remedy="e.g. 24h or 90m")
    return ttl(ttl_text)


def _read_csr(csr_path: Path | None) -> Any:
    from cryptography import x509

    if csr_path is None:
        return None
    try:
        return x509.load_pem_x509_csr(csr_path.read_bytes())
    except (ValueError, OSError):
        raise CAError(
            "not a readable PEM certificate signing request",
            path=csr_path,
            remedy="pass a PEM CSR (-----BEGIN CERTIFICATE REQUEST-----)",
        ) from None


def _workload_key_bytes(key: Any) -> bytes:
    """The workload's own key, for the file the user named (its proxy reads it plain)."""
    from cryptography.hazmat.primitives import serialization

    data: bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return data


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
    default=300,
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
    from reconciler.ca.leaves import check_store_times
    from reconciler.ca.outputs import spiffe_bundle, trust_bundle_pem

    when = resolve_now(now, writes=False)
    store = _open(state_dir, passphrase_file, when, writes=False)
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
    help="A fingerprint the consumer trusts (repeatable; default: the current bundle); "
    "only roots of this CA are accepted.",
)
def ack_command(
    state_dir: Path,
    now: datetime | None,
    passphrase_file: Path | None,
    acks_dir: Path | None,
    consumer: str,
    roots: tuple[str, ...],
) -> None:
    """Record (file-based) that registered CONSUMER validates peers with these roots."""
    from reconciler.ca.consumers import check_consumer_name, write_file_ack

    when = resolve_now(now, writes=True)
    check_consumer_name(consumer)
    store = _open(state_dir, passphrase_file, when, writes=False)
    if not any(record.name == consumer for record in store.state.consumers):
        raise CAError(
            f"consumer {consumer!r} is not registered",
            remedy=f"register it with `meshd ca consumer add {consumer} --kind K`",
            code=REFUSED,
        )
    prints = list(roots) or [store.state.root(n).fingerprint for n in store.state.trusted]
    _check_known_roots(store, prints)
    path = write_file_ack(acks_dir or store.acks_dir, consumer, prints)
    click.echo(f"{consumer}: acknowledged {len(prints)} root(s) in {path}")


def _check_known_roots(store: KeyStore, prints: list[str]) -> None:
    """An acknowledgement of a root this CA never made cannot count for any gate."""
    from compiler.kinds.mesh.anchors import normalize_fingerprint
    from reconciler.ca.consumers import FINGERPRINT

    known = {record.fingerprint for record in store.state.roots}
    for text in prints:
        if not FINGERPRINT.match(text):
            raise CAError(
                f"{text!r} is not a SHA-256 fingerprint",
                remedy="write sha256:AA:BB:... (`meshd ca status` lists them)",
            )
        if normalize_fingerprint(text) not in known:
            raise CAError(
                f"{text} is not a root of this CA",
                path=store.state_file,
                remedy="acknowledge the fingerprints `meshd ca status` lists",
            )


@ca_command.group("consumer")
def consumer_group() -> None:
    """Trust-bundle consumers: gate 1 of a rotation waits for every registered one."""


@consumer_group.command("add")
@_common
@click.argument("name")
@click.option(
    "--kind",
    type=click.Choice(["xds", "kubernetes", "file"]),
    required=True,
    help="xds: a proxy fleet; kubernetes: istio-ca-root-cert ConfigMaps; file: other. "
    "Each reports with `meshd ca ack NAME` for now.",
)
def consumer_add_command(
    state_dir: Path, now: datetime | None, passphrase_file: Path | None, name: str, kind: str
) -> None:
    """Register NAME: rotations then wait for it to acknowledge each new root."""
    from reconciler.ca.consumers import register_consumer
    from reconciler.ca.state import ConsumerKind

    when = resolve_now(now, writes=True)
    store = _open(state_dir, passphrase_file, when, writes=False)
    register_consumer(store.state, name, ConsumerKind(kind), when)
    store.save()
    click.echo(f"registered consumer {name} ({kind}); it acknowledges with `meshd ca ack {name}`")


@consumer_group.command("remove")
@_common
@click.argument("name")
def consumer_remove_command(
    state_dir: Path, now: datetime | None, passphrase_file: Path | None, name: str
) -> None:
    """Unregister NAME: gate 1 stops waiting for it."""
    from reconciler.ca.consumers import unregister_consumer

    when = resolve_now(now, writes=True)
    store = _open(state_dir, passphrase_file, when, writes=False)
    unregister_consumer(store.state, name, when)
    store.save()
    click.echo(f"removed consumer {name}")


@consumer_group.command("list")
@_common
def consumer_list_command(
    state_dir: Path, now: datetime | None, passphrase_file: Path | None
) -> None:
    """List the registered consumers and the roots each has acknowledged."""
    from reconciler.ca.consumers import read_file_consumers

    when = resolve_now(now, writes=False)
    store = _open(state_dir, passphrase_file, when, writes=False)
    acks = {c.name: c.trusted_fingerprints() for c in read_file_consumers(store.acks_dir)}
    names = {record.fingerprint: record.name for record in store.state.roots}
    if not store.state.consumers:
        click.echo("no consumer registered (`meshd ca consumer add NAME --kind K`)")
    for record in store.state.consumers:
        acked = sorted(names.get(fp, fp) for fp in acks.get(record.name, frozenset()))
        shown = ", ".join(acked) if acked else "nothing acknowledged yet"
        click.echo(f"{record.name} ({record.kind}): {shown}")
