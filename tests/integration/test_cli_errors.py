"""Every expected failure of the real `clickagg` command is one line on stderr, exit 1, no traceback.

Each case runs the installed CLI in a subprocess, as a person would, and checks the exact line; the
same case with --debug shows the traceback. Kafka "unreachable" is a closed local port (127.0.0.1:1).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from clickagg.stack.layout import StackLayout

CLI = [str(Path(sys.executable).with_name("clickagg"))]  # the installed entry point
CLOSED = "127.0.0.1:1"


def clickagg(
    *args: str, env: dict[str, str] | None = None, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "ELASTICSEARCH_", "REFERENCE_"))
    }
    return subprocess.run(
        [*CLI, *args], env={**base, **(env or {})}, capture_output=True, text=True, timeout=timeout
    )


def one_line(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "Unclosed" not in result.stderr, result.stderr[-2000:]
    assert result.stderr.splitlines() == [f"clickagg: error: {expected}"], result.stderr[-2000:]


@pytest.fixture
def worker_env(stack: StackLayout, tmp_path: Path) -> dict[str, str]:
    """A deployment of this test alone (its own APP_ID, index, topic and port), on the real stack."""
    name = f"clierr-{os.getpid()}-{tmp_path.name[-12:]}".lower().replace("_", "-")
    return {
        "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap,
        "ELASTICSEARCH_URL": stack.es_url,
        "APP_ID": name,
        "ES_INDEX": f"{name}-minutely",
        "EVENTS_TOPIC": f"{name}-events",
        "DATA_DIR": str(tmp_path / "data"),
        "WEB_PORT": str(free_port()),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def bad_csv(tmp_path: Path) -> Path:
    path = tmp_path / "users.csv"
    path.write_text("101,female,1\ngarbage\nmore,garbage\n")
    return path


def test_malformed_reference_csv(worker_env: dict[str, str], bad_csv: Path) -> None:
    result = clickagg("worker", env={**worker_env, "REFERENCE_DATA": str(bad_csv)})
    one_line(
        result,
        f"REFERENCE_DATA {bad_csv}: refused, 2 of 3 rows are malformed (66.67% > 1.00% allowed); first: "
        "line 2: expected 3 fields (user_id,gender,segment_id), got 1: 'garbage'; "
        "line 3: expected 3 fields (user_id,gender,segment_id), got 2: 'more,garbage'",
    )


def test_malformed_reference_csv_with_debug_shows_the_traceback(
    worker_env: dict[str, str], bad_csv: Path
) -> None:
    result = clickagg("worker", "--debug", env={**worker_env, "REFERENCE_DATA": str(bad_csv)})
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.splitlines()[-1].startswith(f"clickagg: error: REFERENCE_DATA {bad_csv}: refused")


def test_empty_reference_csv(worker_env: dict[str, str], tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    result = clickagg("worker", env={**worker_env, "REFERENCE_DATA": str(empty)})
    one_line(
        result,
        f"REFERENCE_DATA {empty}: refused, it holds no valid rows (0 rows, 0 bad); "
        "an empty file is more likely a broken export than real data",
    )


def test_reference_data_is_a_directory(worker_env: dict[str, str], tmp_path: Path) -> None:
    result = clickagg("worker", env={**worker_env, "REFERENCE_DATA": str(tmp_path)})
    one_line(result, f"REFERENCE_DATA is a directory, not a CSV file: {tmp_path}")


def test_kafka_unreachable_at_worker_start(worker_env: dict[str, str]) -> None:
    result = clickagg("worker", env={**worker_env, "KAFKA_BOOTSTRAP_SERVERS": CLOSED})
    one_line(result, f"Kafka at {CLOSED} is not reachable: check KAFKA_BOOTSTRAP_SERVERS and that Kafka runs")


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_web_port_taken(worker_env: dict[str, str], taken_port: int) -> None:
    result = clickagg("worker", env={**worker_env, "WEB_PORT": str(taken_port)})
    one_line(
        result, f"WEB_PORT {taken_port} on 127.0.0.1 is in use (another worker?): set WEB_PORT to a free port"
    )


def test_empty_bootstrap_servers(worker_env: dict[str, str]) -> None:
    result = clickagg("worker", env={**worker_env, "KAFKA_BOOTSTRAP_SERVERS": ""})
    one_line(result, "KAFKA_BOOTSTRAP_SERVERS is empty: give host:port of at least one broker")


def test_bad_ratio_out_of_range(worker_env: dict[str, str]) -> None:
    result = clickagg("worker", env={**worker_env, "REFERENCE_MAX_BAD_RATIO": "2"})
    one_line(result, "REFERENCE_MAX_BAD_RATIO must be between 0 and 1 (a fraction of the rows), got 2.0")


def test_produce_file_missing(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    one_line(clickagg("produce", "--file", str(missing)), f"--file {missing}: no such file")


def test_produce_file_with_invalid_lines_says_how_many(stack: StackLayout, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(
        '{"article_id": 1, "user_id": 2, "action": "click"}\n'
        "not json\n"
        '{"article_id": -1, "user_id": 2, "action": "click"}\n'
        '{"article_id": 3, "user_id": "4", "action": "impression"}\n'
    )
    one_line(
        clickagg("produce", "--file", str(path), env={"KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap}),
        f"--file {path}: 2 of 4 lines are not valid events (first: line 2: invalid_json); fix them, "
        "or add --send-invalid to send them as they are (the worker dead-letters them)",
    )


def test_produce_with_kafka_unreachable() -> None:
    result = clickagg("produce", "--count", "10", env={"KAFKA_BOOTSTRAP_SERVERS": CLOSED}, timeout=60)
    one_line(result, f"Kafka at {CLOSED} is not reachable: check KAFKA_BOOTSTRAP_SERVERS and that Kafka runs")


def test_produce_rejects_negative_minutes() -> None:
    result = clickagg("produce", "--minutes", "-1")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (
        result.stderr.splitlines()[-1] == "clickagg produce: error: argument --minutes: must be >= 0, got -1"
    )


def test_produce_at_a_rate_sends_what_it_says(stack: StackLayout, tmp_path: Path) -> None:
    """--rate 200 for 300 events takes about 1.5 s, not the blink of an unthrottled send."""
    import time

    topic = f"clierr-rate-{os.getpid()}-{tmp_path.name[-8:]}".lower().replace("_", "-")
    started = time.monotonic()
    result = clickagg(
        "produce", "--count", "300", "--rate", "200", "--events-topic", topic,
        env={"KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap},
    )  # fmt: skip
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"sent 300 events to {topic}"
    assert 1.4 <= took < 15, took
