"""`clickagg worker`: a Faust app (lifecycle, web server, signals) running the two-stage pipeline.

Faust's own per-event stream path is not used for the hot path: the stages read and write Kafka in
batches through aiokafka (see agents/), which Faust hosts as a task and stops on shutdown.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import faust

from clickagg import clients, gc_tuning, logs
from clickagg.app import web
from clickagg.app.pipeline import Pipeline
from clickagg.config import ConfigError, Settings
from clickagg.reference_data.errors import ReferenceDataError

log = logging.getLogger(__name__)


def broker_url(bootstrap: str) -> str:
    return ";".join(f"kafka://{host.strip()}" for host in bootstrap.split(",") if host.strip())


def base_url(settings: Settings) -> str:
    host = "localhost" if settings.web_bind in ("0.0.0.0", "::", "") else settings.web_bind
    return f"http://{host}:{settings.web_port}"


def _fatal(exc: BaseException) -> None:
    """An expected start-up failure (bad reference data, bad settings): one line, exit 1, no traceback.

    Raised inside Faust's task it would be logged as a crash with a 50-line traceback and its message
    three times; the line goes to the real stderr (Faust has made sys.stderr a logger) and the process
    exits at once: no stage has started, nothing is in Kafka or Elasticsearch to shut down.
    """
    if logs.debugging():
        log.error("start-up failed", exc_info=exc)
    sys.stdout.flush()
    os.write(2, f"clickagg: error: {exc}\n".encode())
    os._exit(1)


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
        loghandlers=[logs.handler(settings.log_format)],  # stderr, text or ECS JSON, libraries quiet
    )
    pipeline = Pipeline(settings)

    @app.task
    async def run_pipeline() -> None:
        try:
            await pipeline.start()
        except (ReferenceDataError, ConfigError) as exc:
            _fatal(exc)
        url = base_url(settings)
        log.info("ready: live page %s/dashboard, API %s/api/openapi.json, metrics %s/metrics", url, url, url)
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
    worker = faust.Worker(app, quiet=True, **logs.for_faust(settings.log_level))
    logs.quiet_libraries()
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0) or (1 if pipeline.failed() else 0)
    return 1 if pipeline.failed() else 0
