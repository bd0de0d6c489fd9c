"""README command 1, `scripts/demo.sh`, as its own deployment: it fails loudly when its check fails,
and `--live` serves the live page on the port it names."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from clickagg.stack.layout import StackLayout

ROOT = Path(__file__).parents[2]


def demo_env(stack: StackLayout, tmp_path: Path, tag: str, **extra: str) -> dict[str, str]:
    name = f"demo-{tag}-{os.getpid()}-{int(time.time())}"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "ELASTICSEARCH_"))}
    return {
        **base,
        "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap,
        "ELASTICSEARCH_URL": stack.es_url,
        "APP_ID": name,
        "ES_INDEX": f"{name}-minutely",
        "EVENTS_TOPIC": f"{name}-events",
        "DATA_DIR": str(tmp_path / "data"),
        "WEB_PORT": str(port),
        **extra,
    }


def test_the_demo_exits_1_with_a_message_when_its_check_fails(stack: StackLayout, tmp_path: Path) -> None:
    """Windows that cannot close within the wait (15 min lateness, 15 s wait): the check cannot pass."""
    env = demo_env(stack, tmp_path, "fail", ALLOWED_LATENESS_SECONDS="900", DEMO_WAIT_SECONDS="15")
    result = subprocess.run(
        ["bash", "scripts/demo.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert result.stderr.splitlines()[-1] == (
        f"demo check failed: the complete minutes in ES_INDEX={env['ES_INDEX']} hold 0 events, "
        "not the 20000 sent, after 15 s; see .clickagg/demo-worker.log"
    )


def test_the_live_demo_names_the_port_it_serves(stack: StackLayout, tmp_path: Path) -> None:
    env = demo_env(stack, tmp_path, "live")
    proc = subprocess.Popen(
        ["bash", "scripts/demo.sh", "--live"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Live:"):
                break
        text = "".join(lines)
        assert "The check passed: all 20000 events are counted" in text, text[-3000:]
        (url,) = re.findall(r"Open (http://localhost:(\d+)/dashboard)", lines[-1]) or [("", "")]
        assert url[1] == env["WEB_PORT"], lines[-1]
        with urllib.request.urlopen(url[0], timeout=10) as page:
            assert page.status == 200 and b"<svg" in page.read()
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
        proc.wait(timeout=60)
    time.sleep(1)
    with socket.socket() as sock:  # the demo's worker has stopped: nothing listens on its port
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # our page request's TIME_WAIT is fine
        sock.bind(("127.0.0.1", int(env["WEB_PORT"])))
