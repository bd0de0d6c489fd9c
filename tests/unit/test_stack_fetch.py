"""A first `stack up` says what it downloads, that it is still at it, and what it got (Maven's output: the log)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from clickagg.stack import fetch
from clickagg.stack.layout import StackError

# A stand-in for `mvn` (a real process): writes two jars where Maven would, talks to its log, takes a moment.
FAKE_MVN = """#!/bin/sh
for arg in "$@"; do case "$arg" in -DoutputDirectory=*) out="${arg#-DoutputDirectory=}";; esac; done
echo "[INFO] Downloading from central: https://repo.maven.apache.org/..."
sleep 0.5
head -c 1500000 /dev/zero > "$out/a.jar"; head -c 600000 /dev/zero > "$out/b.jar"
exit "${FAKE_MVN_EXIT:-0}"
"""


@pytest.fixture
def fake_mvn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    mvn = bin_dir / "mvn"
    mvn.write_text(FAKE_MVN)
    mvn.chmod(mvn.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


def test_progress_and_summary_on_stderr_maven_in_the_log(
    fake_mvn: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fetch, "PROGRESS_EVERY_S", 0.1)
    lib, log = tmp_path / "lib", tmp_path / "fetch.log"
    fetch.fetch_jars("kafka-pom.xml", "3.9.1", lib, log)
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"downloading kafka 3.9.1 from Maven Central (first start only; Maven's output: {log})"
    assert any(line.startswith("  still downloading kafka 3.9.1 (") for line in err[1:-1]), err
    assert err[-1].startswith("downloaded kafka 3.9.1: 2 jars, 2 MB in ")
    assert "Downloading from central" in log.read_text()  # Maven's own lines stay in the log
    fetch.fetch_jars("kafka-pom.xml", "3.9.1", lib, log)  # the second time: nothing to do, nothing said
    assert capsys.readouterr().err == ""


def test_a_failed_download_is_one_line(
    fake_mvn: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_MVN_EXIT", "1")
    log = tmp_path / "fetch.log"
    with pytest.raises(StackError, match=rf"^downloading kafka 3.9.1 with Maven failed; see {log}$"):
        fetch.fetch_jars("kafka-pom.xml", "3.9.1", tmp_path / "lib", log)
