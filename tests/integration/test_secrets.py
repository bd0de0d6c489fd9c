"""No secret anywhere: unique secrets set on a real worker never appear in its log, its HTTP answers
(/metrics, /readyz, /api, the live page), `clickagg stack status` or the settings' repr; and
WEB_AUTH_TOKEN guards /api and /dashboard while probes and /metrics stay open."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

from clickagg import config
from tests.integration.conftest import free_port
from tests.support.cluster import Deployment
from tests.support.workload import build, past_minute, produce


def fetch(port: int, path: str, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")
    except urllib.error.URLError:
        return 0, ""  # not listening yet


async def test_unique_secrets_never_leak(deployment: Deployment) -> None:
    secrets = {name: f"{name.lower()}-{uuid.uuid4().hex}" for name in config.SECRETS}
    env = {name.upper(): value for name, value in secrets.items()}
    env["ELASTICSEARCH_USERNAME"] = "clickagg"  # basic auth goes with its password (an open node ignores it)
    env["ELASTICSEARCH_API_KEY"] = "keyid:" + secrets["elasticsearch_api_key"]
    token = secrets["web_auth_token"]
    wl = build(5_000, past_minute(5), minutes=2, partitions=1, lateness_ms=5000, seed=31)
    csv = await deployment.prepare(wl.csv(), partitions=1)
    port = free_port()
    worker = deployment.start_worker(port, REFERENCE_DATA=csv, **env)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and (await asyncio.to_thread(fetch, port, "/readyz"))[0] != 200:
        assert worker.poll() is None, deployment.logs()
        await asyncio.sleep(0.5)
    await produce(deployment.bootstrap, deployment.topic, wl.records)
    await asyncio.sleep(8)

    answers = {}
    for path in ("/healthz", "/readyz", "/metrics"):
        answers[path] = await asyncio.to_thread(fetch, port, path)  # open, no token
        assert answers[path][0] == 200, (path, answers[path])
    for path in ("/api/minutes/latest?n=3", "/api/completeness", "/dashboard", "/dashboard/data.json"):
        status, _ = await asyncio.to_thread(fetch, port, path)
        assert status == 401, (path, status)
        assert (await asyncio.to_thread(fetch, port, path, "wrong"))[0] == 401
        answers[path] = await asyncio.to_thread(fetch, port, path, token)
        assert answers[path][0] in (200, 503), (path, answers[path])  # 503: a minute not complete yet

    status = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "clickagg.cli", "stack", "status"],
        env=deployment.env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    deployment.stop_workers()
    full_logs = "\n".join(p.read_text(errors="replace") for p in deployment.tmp.glob("worker-*.log"))
    text = "\n".join([full_logs, status.stdout, status.stderr, *(body for _, body in answers.values())])
    text += repr(config.Settings(**{name: value for name, value in secrets.items()}))
    leaked = [name for name, value in secrets.items() if value in text]
    assert not leaked, f"secrets leaked: {leaked}"
    assert "with API key" in full_logs  # the start line says which method, not its value
