"""A `meshd up` under test: a real control plane, real Envoys and demo backends on 127.0.0.1.

`local_mesh(policies, workdir)` copies the policy folder (tests edit the copy), creates a CA
key store for the run (so tests can issue certificates for any identity, or from a foreign
root, to knock on a sidecar's inbound listener themselves), starts `meshd up` in a
subprocess and waits for its run state, which it publishes once every Envoy has ACKed.
On the way out it sends Ctrl-C, waits, and kills by pid whatever of its own is left
(`meshd up` itself, then each Envoy it reported), even when the test failed.

Requests go the way an application's would (`call`: to the caller's outbound listener,
Host naming the callee, through its routes, the callee's sidecar and RBAC, to the
callee's backend) or straight to a sidecar's inbound mTLS listener (`direct`).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from cryptography.hazmat.primitives import serialization

from compiler.api import compile_tree, load_tree
from compiler.model.placement import Address, InstancePlacement
from reconciler.ca.issue import KeyAlgorithm
from reconciler.ca.service import CAService, WorkloadIdentity
from reconciler.ca.state import Settings
from reconciler.ca.store import create_store
from reconciler.up.call import Result, plan_call, send
from reconciler.up.runstate import RUN_FILE, RunState, read_running
from reconciler.up.status import fetch_status
from tests.helpers import BIN, NOW, REPO

STARTUP = 90.0
"""Seconds `meshd up` may take to bring every Envoy to its first ACK (a loaded 2-core CI)."""
LOCAL = "127.0.0.1"


def new_store(path: Path, trust_domain: str) -> CAService:
    """A CA key store (root and intermediate) for one run."""
    create_store(
        path,
        trust_domain=trust_domain,
        algorithm=KeyAlgorithm.ECDSA_P256,
        settings=Settings(),
        root_name="root-1",
        passphrase=None,
        now=datetime.now(UTC),
    )
    return CAService(path)


@dataclass(frozen=True, slots=True)
class ClientCredential:
    """A workload certificate written where `ssl` can load it."""

    spiffe_id: str
    chain: Path
    key: Path


def write_credential(identity: WorkloadIdentity, directory: Path) -> ClientCredential:
    directory.mkdir(parents=True, exist_ok=True)
    name = identity.spiffe_id.rsplit("/", 1)[-1]
    chain = directory / f"{name}.pem"
    key = directory / f"{name}.key"
    chain.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in identity.chain))
    key.touch(mode=0o600)
    key.write_bytes(
        identity.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ClientCredential(identity.spiffe_id, chain, key)


@dataclass(slots=True)
class LocalMesh:
    root: Path
    """The policy folder `meshd up` watches (the test's own copy)."""
    workdir: Path
    ca: CAService
    trust_domain: str
    process: subprocess.Popen[bytes]
    log: IO[str]
    envoys: list[int] = field(default_factory=list)

    @property
    def runtime(self) -> Path:
        return self.workdir / "run"

    def output(self) -> str:
        self.log.flush()
        return (self.workdir / "up.log").read_text(errors="replace")

    def running(self) -> RunState:
        return read_running(self.runtime / "meshd")

    def status(self) -> dict[str, Any]:
        return fetch_status(self.running())

    def node(self, node_id: str) -> InstancePlacement:
        return self.running().mesh.placement[node_id]

    def nodes_of(self, service: str) -> list[str]:
        """Node ids of `namespace/name`'s instances."""
        placement = self.running().mesh.placement
        return sorted(n for n, i in placement.items() if str(i.service) == service)

    def call(
        self,
        caller: str,
        callee: str,
        path: str,
        *,
        method: str = "GET",
        headers: Sequence[str] = (),
        count: int = 1,
        port: int | None = None,
    ) -> list[Result]:
        """`count` requests from `caller`'s sidecar, as `meshd call` sends them."""
        plan = plan_call(
            self.running(),
            caller=caller,
            callee=callee,
            method=method,
            path=path,
            headers=headers,
            port=port,
        )
        return send(plan, count)

    def admin(self, node_id: str) -> Address:
        return self.running().mesh.admin[node_id]

    def stats(self, node_id: str, pattern: str) -> dict[str, int]:
        """Envoy's counters and gauges whose name matches `pattern` (a regex)."""
        address = self.admin(node_id)
        query = urllib.parse.urlencode({"filter": pattern, "format": "json"})
        with urllib.request.urlopen(f"http://{address}/stats?{query}", timeout=5) as response:
            document = json.loads(response.read())
        return {
            stat["name"]: int(stat["value"])
            for stat in document.get("stats", [])
            if "value" in stat
        }

    def behave(self, node_id: str, *, fail_every: int = 0, delay_ms: int = 0) -> None:
        """Tell an instance's demo backend how to answer (on its own port, not through
        the mesh)."""
        app = next(iter(self.node(node_id).app.values()))
        body = json.dumps({"fail_every": fail_every, "delay_ms": delay_ms}).encode()
        request = urllib.request.Request(f"http://{app}/_meshd/behaviour", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200

    def identity(self, spiffe_id: str, *, ca: CAService | None = None) -> ClientCredential:
        """A certificate for `spiffe_id` from this run's CA (or `ca`)."""
        issued = (ca or self.ca).issue(datetime.now(UTC), spiffe_id)
        return write_credential(issued, self.workdir / "clients" / str(id(ca or self.ca)))

    def direct(
        self,
        node_id: str,
        port: int,
        credential: ClientCredential | None,
        *,
        method: str = "GET",
        path: str = "/",
        headers: dict[str, str] | None = None,
    ) -> int:
        """One request straight to `node_id`'s inbound listener for service port `port`,
        over TLS with `credential` as the client certificate (None: none); the status."""
        address = self.node(node_id).inbound[port]
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.load_verify_locations(cadata=self.ca.bundle_pem(datetime.now(UTC)).decode())
        if credential is not None:
            context.load_cert_chain(credential.chain, credential.key)
        connection = http.client.HTTPSConnection(
            address.host, address.port, context=context, timeout=10
        )
        try:
            connection.request(method, path, headers=headers or {})
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP
        while not (self.runtime / "meshd" / RUN_FILE).exists():
            assert self.process.poll() is None, self.output()
            assert time.monotonic() < deadline, f"meshd up did not start: {self.output()}"
            time.sleep(0.1)
        self.envoys = [int(p["pid"]) for p in self.status()["proxies"]]

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.envoys.extend(int(p["pid"]) for p in self.status()["proxies"])
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        for pid in set(self.envoys):  # never leave one behind, even when the test failed
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.log.close()


@contextlib.contextmanager
def local_mesh(policies: Path, workdir: Path) -> Iterator[LocalMesh]:
    """`meshd up` over a copy of `policies`, stopped (and everything it started with it)
    on the way out."""
    root = workdir / "policies"
    shutil.copytree(policies, root)
    trust_domain = compile_tree(load_tree(root), now=NOW).model.settings.trust_domain
    ca = new_store(workdir / "ca", trust_domain)
    runtime = workdir / "run"
    runtime.mkdir()
    log = (workdir / "up.log").open("w")
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime)}
    process = subprocess.Popen(
        [str(BIN / "meshd"), "up", str(root), "--ca-state", str(workdir / "ca")],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    mesh = LocalMesh(root, workdir, ca, trust_domain, process, log)
    try:
        mesh.wait_ready()
        yield mesh
    finally:
        mesh.stop()


def statuses(results: Sequence[Result]) -> list[int | None]:
    return [result.status for result in results]


def kinds(results: Sequence[Result]) -> set[str]:
    return {result.kind for result in results}
