"""`clickagg worker`: a Faust app (lifecycle, web server, signals) running the two-stage pipeline.

Faust's own per-event stream path is not used for the hot path: the stages read and write Kafka in
batches through aiokafka (see agents/), which Faust hosts as a task and stops on shutdown.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import faust

from clickagg import clients, gc_tuning
from clickagg.app import web
from clickagg.app.pipeline import Pipeline
from clickagg.config import Settings

log = logging.getLogger(__name__)


def broker_url(bootstrap: str) -> str:
    return ";".join(f"kafka://{host.strip()}" for host in bootstrap.split(",") if host.strip())


def create_app(settings: Settings) -> tuple[faust.App, Pipeline]:
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    app = faust.App(
        f"{settings.app_id}-worker",
        broker=broker_url(settings.kafka_bootstrap_servers),
        broker_credentials=clients.faust_credentials(settings),
        web_port=settings.web_port,
        web_bind=settings.web_bind,
        datadir=settings.data_dir,
        autodiscover=False,
        web_graph_enabled=False,
    )
    pipeline = Pipeline(settings)

    @app.task
    async def run_pipeline() -> None:
        await pipeline.start()
        await pipeline.wait()
        if pipeline.failed():
            await app.crash(RuntimeError("a pipeline stage failed; see the log above"))

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def stop_pipeline(sender: Any, *args: Any, **kwargs: Any) -> None:
        await pipeline.stop()

    web.register(app, pipeline)
    return app, pipeline


def run(settings: Settings) -> int:
    gc_tuning.tune()
    app, pipeline = create_app(settings)
    worker = faust.Worker(app, loglevel=settings.log_level.upper(), quiet=True)
    for noisy in ("aiokafka", "elastic_transport", "faust.transport", "faust.tables"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0) or (1 if pipeline.failed() else 0)
    return 1 if pipeline.failed() else 0
