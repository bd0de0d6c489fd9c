"""The worker's HTTP endpoints on Faust's web server: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

from typing import Any

from app import api, dashboard
from clickagg.metrics import METRICS


def readiness(pipeline: Any) -> tuple[int, dict[str, Any]]:
    ready = dict(pipeline.ready)
    ok = all(ready.values()) and not pipeline.failed()
    return (200 if ok else 503), {"ready": ok, **ready}


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
