"""A real worker's log at INFO: its own lines only (no Faust start-up steps, no error at a normal start),
the live page's address once ready, and with LOG_FORMAT=json every line an ECS document."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clickagg.stack.layout import StackLayout

CLI = [str(Path(sys.executable).with_name("clickagg"))]


def run_worker_until_ready(stack: StackLayout, tmp_path: Path, fmt: str) -> tuple[list[str], int]:
    """A brand-new deployment (a new consumer group: the case that logged CoordinatorNotAvailable)."""
    name = f"logs-{fmt}-{os.getpid()}-{int(time.time() * 1000)}"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "ELASTICSEARCH_", "LOG_"))},
        "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap,
        "ELASTICSEARCH_URL": stack.es_url,
        "APP_ID": name,
        "ES_INDEX": f"{name}-minutely",
        "EVENTS_TOPIC": f"{name}-events",
        "DATA_DIR": str(tmp_path / "data"),
        "WEB_PORT": str(port),
        "LOG_FORMAT": fmt,
    }
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        proc = subprocess.Popen([*CLI, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=out)
        try:
            deadline = time.monotonic() + 90
            while "ready: live page" not in log.read_text():
                assert proc.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.2)
            time.sleep(3)  # the stages take their partitions; a new group's coordinator lookups happen now
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    return log.read_text().splitlines(), port


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_normal_start_is_a_handful_of_own_lines(stack: StackLayout, tmp_path: Path, fmt: str) -> None:
    lines, port = run_worker_until_ready(stack, tmp_path, fmt)
    text = "\n".join(lines)
    assert "Starting..." not in text and "[^" not in text, text  # Faust's and mode's steps
    assert "CoordinatorNotAvailable" not in text and "Traceback" not in text, text
    if fmt == "json":
        docs = [json.loads(line) for line in lines]  # every line is one JSON document
        assert all("@timestamp" in d and "log.level" in d and "ecs.version" in d for d in docs), docs
        messages = [d["message"] for d in docs]
        levels = {d["log.level"] for d in docs}
    else:
        parsed = [re.fullmatch(r"\[[^\]]+\] \[\d+\] \[(\w+)\] (.*)", line) for line in lines]
        assert all(parsed), text
        messages = [m.group(2) for m in parsed if m]
        levels = {m.group(1).lower() for m in parsed if m}
    assert levels <= {"info"}, text  # nothing wrong happened, so nothing is reported as wrong
    ready = [m for m in messages if m.startswith("ready: ")]
    url = f"http://127.0.0.1:{port}"
    assert ready == [f"ready: live page {url}/dashboard, API {url}/api/openapi.json, metrics {url}/metrics"]
    assert len(lines) <= 15, text
