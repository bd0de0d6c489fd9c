"""The stack's one-line errors: missing tools, a taken port, a failed download, a pid that is not ours."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from clickagg.cli import main
from clickagg.stack import manager, procs
from clickagg.stack.fetch import fetch_jars
from clickagg.stack.layout import StackError, StackLayout


def layout(tmp_path: Path, kafka_port: int = 1, es_port: int = 2) -> StackLayout:
    return StackLayout(
        cache_dir=tmp_path / "cache", state_dir=tmp_path / "state", kafka_port=kafka_port, es_port=es_port
    )


def test_missing_java_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH
    monkeypatch.setenv("CLICKAGG_STACK_DIR", str(tmp_path / "state"))
    assert main(["stack", "up"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "`java` was not found" in err


def test_missing_maven_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(StackError, match="`mvn` was not found"):
        fetch_jars("kafka-pom.xml", "3.9.1", tmp_path / "lib", tmp_path / "log")


def test_failed_download_names_the_log(tmp_path: Path) -> None:
    log = tmp_path / "fetch.log"
    with pytest.raises(StackError, match=f"failed; see {log}"):
        fetch_jars("kafka-pom.xml", "0.0.0-does-not-exist", tmp_path / "lib", log)
    assert log.stat().st_size > 0


def test_taken_port_is_refused_before_starting_anything(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(StackError, match=f"port {port} for kafka is taken"):
            manager.up(layout(tmp_path, kafka_port=port), "kafka")
    assert not (tmp_path / "state" / "kafka" / "pid").exists()


def test_down_never_stops_a_process_it_did_not_start(tmp_path: Path) -> None:
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        lay = layout(tmp_path)
        pid_file = lay.pid_file("kafka")
        pid_file.parent.mkdir(parents=True)
        pid_file.write_text(str(stranger.pid))  # a recycled or foreign pid in our pid file
        assert manager.down(lay, "kafka") == ["kafka          not running"]
        assert stranger.poll() is None
        assert procs.owned_pid(pid_file, "-Dclickagg.stack=") is None
    finally:
        stranger.kill()
        stranger.wait()
