"""The worker's HTTP endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from clickagg.metrics import METRICS


def build_app(pipeline: Any) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def readyz(_: web.Request) -> web.Response:
        ready = dict(pipeline.ready)
        ok = all(ready.values()) and not pipeline.failed()
        return web.json_response({"ready": ok, **ready}, status=200 if ok else 503)

    async def metrics(_: web.Request) -> web.Response:
        ref = pipeline.reference
        if ref is not None:
            METRICS.set("reference_users", len(ref.table))
            METRICS.set("reference_reloads_ok", getattr(ref, "reloads_ok", 0))
            METRICS.set("reference_reloads_failed", getattr(ref, "reloads_failed", 0))
        return web.Response(text=METRICS.render(), content_type="text/plain")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app
