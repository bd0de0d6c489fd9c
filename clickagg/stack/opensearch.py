"""The opt-in third service of the local stack: a real OpenSearch node (`clickagg stack up opensearch`).

Like the Elasticsearch node it runs from Maven Central jars, in a JVM started by a small launcher
(`java/OsNode.java`, compiled here) through the test framework's MockNode, with the system properties
OpenSearch's own launcher passes a production node (distribution/tools/launchers SystemJvmOptions).
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from clickagg.stack.fetch import fetch_jars, java_resource, require_tool
from clickagg.stack.layout import OPENSEARCH_VERSION, StackError, StackLayout
from clickagg.stack.services import Service, java_major

NAME = "opensearch"
LAUNCHER = "OsNode"


def lib_dir(layout: StackLayout) -> Path:
    return layout.cache_dir / f"opensearch-{OPENSEARCH_VERSION}" / "lib"


def launcher_dir(layout: StackLayout) -> Path:
    return layout.cache_dir / f"opensearch-{OPENSEARCH_VERSION}" / "launcher"


def transport_port(layout: StackLayout) -> int:
    return layout.opensearch_port + 100


def url(layout: StackLayout) -> str:
    return f"http://127.0.0.1:{layout.opensearch_port}"


def compile_launcher(libs: Path, out_dir: Path, log: Path) -> None:
    """Compile OsNode.java against the jars, again only when its source changed."""
    source = java_resource(f"{LAUNCHER}.java")
    src_copy = out_dir / f"{LAUNCHER}.java"
    marker = out_dir / f"{LAUNCHER}.class"
    if marker.exists() and src_copy.exists() and src_copy.read_text() == source:
        return
    javac = require_tool("javac", "install a Java 17+ JDK (e.g. `apt-get install openjdk-17-jdk-headless`)")
    out_dir.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    src_copy.write_text(source)
    cmd = [javac, "-nowarn", "-cp", f"{libs}/*", "-d", str(out_dir), str(src_copy)]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        marker.unlink(missing_ok=True)
        raise StackError(f"compiling the OpenSearch launcher failed; see {log}")


def production_jvm_options(java_feature: int) -> list[str]:
    """What OpenSearch 2.x's own launcher adds for every node (SystemJvmOptions, jvm.options' G1 lines).

    Left out: -XX:+AlwaysPreTouch (it would commit the whole initial heap at start on this shared box).
    The locale providers matter for date parsing: SPI loads OpenSearch's IsoCalendarDataProvider
    (weeks start on Monday); COMPAT is what 2.x uses on the JDKs that still have it (removed in 23).
    """
    return [
        "-XX:+UseG1GC", "-XX:G1ReservePercent=25", "-XX:InitiatingHeapOccupancyPercent=30",
        "-Dopensearch.networkaddress.cache.ttl=60", "-Dopensearch.networkaddress.cache.negative.ttl=10",
        "-Xss1m", "-Djava.awt.headless=true", "-Dfile.encoding=UTF-8", "-Djna.nosys=true",
        "-XX:-OmitStackTraceInFastThrow", "-XX:+ShowCodeDetailsInExceptionMessages",
        "-Dio.netty.noUnsafe=true", "-Dio.netty.noKeySetOptimization=true",
        "-Dio.netty.recycler.maxCapacityPerThread=0", "-Dio.netty.allocator.numDirectArenas=0",
        "-Dlog4j.shutdownHookEnabled=false", "-Dlog4j2.disable.jmx=true",
        "-Djava.locale.providers=" + ("SPI,CLDR" if java_feature >= 23 else "SPI,COMPAT"),
    ]  # fmt: skip


def opensearch_service(layout: StackLayout) -> Service:
    home = layout.service_dir(NAME)
    libs = lib_dir(layout)
    launcher = launcher_dir(layout)

    def install() -> None:
        log = layout.log_file(NAME)
        fetch_jars("opensearch-pom.xml", OPENSEARCH_VERSION, libs, log)
        compile_launcher(libs, launcher, log)
        (home / "tmp").mkdir(parents=True, exist_ok=True)

    def command() -> list[str]:
        java = require_tool("java", "install a Java 17+ runtime")
        return [
            java, "-Xms512m", "-Xmx1g", *production_jvm_options(java_major()),
            f"-Djava.io.tmpdir={home / 'tmp'}",
            f"-Dclickagg.os.home={home}",
            f"-Dclickagg.os.http_port={layout.opensearch_port}",
            f"-Dclickagg.os.transport_port={transport_port(layout)}",
            f"-Dclickagg.stack={home}",
            "-cp", f"{launcher}:{libs}/*", LAUNCHER,
        ]  # fmt: skip

    return Service(
        name=NAME,
        port=layout.opensearch_port,
        url=url(layout),
        install=install,
        command=command,
        healthy=lambda: opensearch_healthy(url(layout)),
    )


def _get_json(address: str, timeout_s: float) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(address, timeout=timeout_s) as resp:
            body = json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return body if isinstance(body, dict) else None


def opensearch_healthy(address: str, timeout_s: float = 5.0) -> bool:
    """True when the node says it is OpenSearch and its cluster is yellow or green."""
    root = _get_json(address, timeout_s)
    version = root.get("version") if root else None
    if not isinstance(version, dict) or version.get("distribution") != "opensearch":
        return False
    health = _get_json(f"{address}/_cluster/health", timeout_s)
    return health is not None and health.get("status") in ("yellow", "green")
