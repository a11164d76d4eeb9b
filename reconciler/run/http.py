"""`meshd run`'s HTTP side: probes, Prometheus metrics and the Git webhook.

`/healthz` answers while the process serves; `/readyz` only once a revision was applied
(Kubernetes keeps an unready replica out of its Service); `/metrics` is the
loop's counters plus the target's own (the xds server's pushes and ACKs); `POST /hook`
asks for a fetch when the body carries the shared secret's HMAC (GitHub's
`X-Hub-Signature-256`), and answers 401 otherwise. A rejected delivery is counted, its
body never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from reconciler.source.webhook import SIGNATURE_HEADER, signature_matches
from reconciler.state import ReconcilerState

log = logging.getLogger("meshd.run")
MAX_HOOK_BYTES = 1024 * 1024


@dataclass(slots=True)
class Endpoints:
    state: Callable[[], ReconcilerState]
    trigger: Callable[[], None]
    webhook_secret: bytes | None = field(default=None, repr=False)
    target_metrics: Callable[[], str] = lambda: ""
    hooks_rejected: int = 0

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_HOOK_BYTES)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_post("/hook", self.hook)
        return app

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(self, request: web.Request) -> web.Response:
        """Ready once something is served: a later revision that fails keeps the replica
        serving the last good one, so it stays in its Service (the Ready condition and
        the metrics say the latest failed)."""
        serving = self.state().last_applied_revision
        if serving is not None:
            return web.Response(text=f"serving {serving}\n")
        return web.Response(status=503, text="not ready: no revision applied yet\n")

    async def metrics(self, request: web.Request) -> web.Response:
        text = metrics_text(self.state(), self.hooks_rejected) + self.target_metrics()
        return web.Response(text=text, content_type="text/plain", charset="utf-8")

    async def hook(self, request: web.Request) -> web.Response:
        if self.webhook_secret is None:
            return web.Response(status=404, text="no webhook configured (--webhook-secret-file)\n")
        body = await request.read()
        if not signature_matches(self.webhook_secret, body, request.headers.get(SIGNATURE_HEADER)):
            self.hooks_rejected += 1
            log.warning("webhook: delivery refused (missing or wrong %s)", SIGNATURE_HEADER)
            return web.Response(status=401, text=f"bad or missing {SIGNATURE_HEADER}\n")
        self.trigger()
        return web.Response(status=202, text="fetch scheduled\n")


def metrics_text(state: ReconcilerState, hooks_rejected: int) -> str:
    """The loop's figures in Prometheus' text format."""
    lines = [
        "# HELP meshd_reconcile_total Passes by outcome counter.",
        "# TYPE meshd_reconcile_total counter",
    ]
    for name in ("applied", "refused", "failed", "pruned", "drift_corrected"):
        lines.append(f'meshd_reconcile_total{{counter="{name}"}} {state.counters.get(name, 0)}')
    last = state.history[0] if state.history else None
    lines += [
        "# HELP meshd_reconcile_duration_seconds Duration of the last applying pass.",
        "# TYPE meshd_reconcile_duration_seconds gauge",
        f"meshd_reconcile_duration_seconds {last.duration_seconds if last else 0}",
        "# HELP meshd_last_applied_revision_info The revision the target serves.",
        "# TYPE meshd_last_applied_revision_info gauge",
        f'meshd_last_applied_revision_info{{revision="{state.last_applied_revision or ""}"}} 1',
        "# HELP meshd_ready Whether the last revision is applied and accepted.",
        "# TYPE meshd_ready gauge",
    ]
    ready = state.condition("Ready")
    lines.append(f"meshd_ready {1 if ready is not None and ready.status else 0}")
    lines += [
        "# HELP meshd_consecutive_failures Failed passes since the last good one.",
        "# TYPE meshd_consecutive_failures gauge",
        f"meshd_consecutive_failures {state.failures}",
        "# HELP meshd_webhook_rejected_total Webhook deliveries with a bad signature.",
        "# TYPE meshd_webhook_rejected_total counter",
        f"meshd_webhook_rejected_total {hooks_rejected}",
    ]
    return "\n".join(lines) + "\n"
