"""`clickagg worker`: run the pipeline and its web endpoints until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from app.pipeline import Pipeline
from app.web import build_app
from clickagg.config import Settings

log = logging.getLogger(__name__)


async def serve(settings: Settings) -> int:
    pipeline = Pipeline(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, pipeline.stopping.set)
    runner = web.AppRunner(build_app(pipeline))
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", settings.web_port).start()
    log.info("web on http://localhost:%d (healthz, readyz, metrics)", settings.web_port)
    try:
        start = asyncio.create_task(pipeline.start())
        stop_wait = asyncio.create_task(pipeline.stopping.wait())
        await asyncio.wait({start, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        if start.done():
            start.result()
            await pipeline.wait()
        else:
            start.cancel()
    finally:
        await pipeline.stop()
        await runner.cleanup()
    return 1 if pipeline.failed() else 0


def run(settings: Settings) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    logging.getLogger("elastic_transport").setLevel(logging.WARNING)
    return asyncio.run(serve(settings))
