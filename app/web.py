"""The worker's HTTP endpoints on Faust's web server: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import time
from typing import Any

from clickagg.app import api, dashboard
from clickagg.health import HEALTH
from clickagg.metrics import CONTENT_TYPE, METRICS


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
    """The Prometheus text page; reference data and readiness are read now, at scrape time."""
    ref = pipeline.reference
    if ref is not None:
        METRICS.set("reference_users", len(ref.table))
    return METRICS.render()


def provide_metrics(pipeline: Any) -> None:
    """Scrape-time metrics whose values live on the pipeline (nothing pushes them on a hot path)."""

    def reloads() -> list[tuple[dict[str, str], float]]:
        ref = pipeline.reference
        if ref is None:
            return []
        return [({"result": "ok"}, ref.reloads_ok), ({"result": "failed"}, ref.reloads_failed)]

    METRICS.provide("reference_reloads_total", reloads)
    METRICS.provide("ready", lambda: [({}, 1.0 if readiness(pipeline)[0] == 200 else 0.0)])


def register(app: Any, pipeline: Any) -> None:
    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"status": "alive"})

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        status, body = readiness(pipeline)
        return web.json(body, status=status)

    provide_metrics(pipeline)

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        return web.bytes(metrics_text(pipeline).encode(), headers={"Content-Type": CONTENT_TYPE})

    api.register(app, pipeline)  # the /api/* read endpoints
    dashboard.register(app, pipeline.s)  # the live page, /dashboard
