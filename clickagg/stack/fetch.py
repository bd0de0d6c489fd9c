"""Downloads the stack's jars from Maven Central into the cache, once."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

from clickagg.stack.layout import StackError

PROGRESS_EVERY_S = 15.0


def require_tool(name: str, hint: str) -> str:
    """Return the path of an executable or fail with a one-line explanation."""
    path = shutil.which(name)
    if path is None:
        raise StackError(f"`{name}` was not found on PATH: {hint}")
    return path


def java_resource(name: str) -> str:
    return resources.files("clickagg.stack").joinpath("java").joinpath(name).read_text()


def fetch_jars(pom_resource: str, version: str, lib_dir: Path, log: Path) -> None:
    """Resolve a pom's dependencies with Maven into lib_dir; a marker file makes later calls free."""
    marker = lib_dir / ".complete"
    if marker.exists():
        return
    mvn = require_tool(
        "mvn", "install Maven (e.g. `apt-get install maven`); it downloads Kafka and Elasticsearch"
    )
    require_tool("java", "install a Java 17+ runtime (e.g. `apt-get install openjdk-17-jdk-headless`)")
    lib_dir.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="clickagg-mvn-") as tmp:
        pom = Path(tmp) / "pom.xml"
        pom.write_text(java_resource(pom_resource).replace("@VERSION@", version))
        cmd = [
            mvn,
            "-B",
            "-q",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={lib_dir}",
        ]
        what = f"{pom_resource.split('-')[0]} {version}"
        returncode = _run_with_progress(cmd, what, lib_dir, log)
    if returncode != 0:
        raise StackError(f"downloading {what} with Maven failed; see {log}")
    marker.write_text(version)


def _run_with_progress(cmd: list[str], what: str, lib_dir: Path, log: Path) -> int:
    """Maven's output goes to the log; the person waiting sees a start line, a line every
    PROGRESS_EVERY_S and a summary (jars, size, time) on stderr, so a first `stack up` never looks stuck."""
    every_s = PROGRESS_EVERY_S
    started = time.monotonic()
    print(f"downloading {what} from Maven Central (first start only; Maven's output: {log})", file=sys.stderr)
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        while True:
            try:
                returncode = proc.wait(timeout=every_s)
                break
            except subprocess.TimeoutExpired:
                print(f"  still downloading {what} ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    if returncode == 0:
        jars = list(lib_dir.glob("*.jar"))
        size_mb = sum(j.stat().st_size for j in jars) / 1e6
        took = time.monotonic() - started
        print(f"downloaded {what}: {len(jars)} jars, {size_mb:.0f} MB in {took:.0f} s", file=sys.stderr)
    return returncode


def compile_es_launcher(lib_dir: Path, out_dir: Path, log: Path) -> None:
    """Compile the tiny Java launcher that runs a real Elasticsearch node (MockNode) from the jars."""
    marker = out_dir / "EsNode.class"
    source = java_resource("EsNode.java")
    src_copy = out_dir / "EsNode.java"
    if marker.exists() and src_copy.exists() and src_copy.read_text() == source:
        return
    javac = require_tool("javac", "install a Java 17+ JDK (e.g. `apt-get install openjdk-17-jdk-headless`)")
    out_dir.mkdir(parents=True, exist_ok=True)
    src_copy.write_text(source)
    cmd = [javac, "-cp", f"{lib_dir}/*", "-d", str(out_dir), str(src_copy)]
    with log.open("ab") as out:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        marker.unlink(missing_ok=True)
        raise StackError(f"compiling the Elasticsearch launcher failed; see {log}")
