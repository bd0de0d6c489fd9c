"""The worker's HTTP endpoints on Faust's web server: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import time
from typing import Any

from clickagg.app import api, dashboard
from clickagg.health import HEALTH
from clickagg.metrics import METRICS


def readiness(pipeline: Any, now: float | None = None) -> tuple[int, dict[str, Any]]:
    """Ready: started, both services reachable, both stages running and not stuck (clickagg.health).

    Not ready answers 503 with the reasons, e.g. {"elasticsearch": "unreachable (...) (for 12s)"};
    /healthz stays the liveness answer (the process runs), so a probe restarts nothing for an outage.
    """
    started = dict(pipeline.ready)
    ok, reasons = HEALTH.readiness(time.monotonic() if now is None else now)
    for name, done in started.items():
        if not done:
            reasons.setdefault(name, "starting")
    if pipeline.failed():
        reasons["pipeline"] = "a stage stopped for good; see the log"
    ok = not reasons
    return (200 if ok else 503), {"ready": ok, **started, "reasons": reasons}


def metrics_text(pipeline: Any) -> str:
    ref = pipeline.reference
    if ref is not None:
        METRICS.set("reference_users", len(ref.table))
        METRICS.set("reference_reloads_ok", getattr(ref, "reloads_ok", 0))
        METRICS.set("reference_reloads_failed", getattr(ref, "reloads_failed", 0))
    return METRICS.render()


def register(app: Any, pipeline: Any) -> None:
    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"status": "alive"})

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        status, body = readiness(pipeline)
        return web.json(body, status=status)

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        return web.text(metrics_text(pipeline), content_type="text/plain")

    api.register(app, pipeline)  # the /api/* read endpoints
    dashboard.register(app, pipeline.s)  # the live page, /dashboard
