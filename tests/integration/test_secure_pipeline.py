"""The pipeline on the secure stack (`clickagg stack up --secure`): Kafka SASL_SSL with SCRAM-SHA-512,
Elasticsearch behind TLS with basic auth or an API key. The worker gets nothing but `secure.env`
(plus its deployment's names); counts equal SPEC's SQL. Misconfigurations fail fast with one line.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clickagg.stack import manager, secure
from clickagg.stack.layout import StackError, StackLayout
from tests.integration.conftest import free_port
from tests.support.cluster import Deployment, assert_exact
from tests.support.oracle import expected_rows
from tests.support.workload import build, past_minute, produce


def read_env(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


@pytest.fixture(scope="module")
def secure_env(stack: StackLayout) -> dict[str, dict[str, str]]:
    try:
        try:
            manager.up(stack, secure=True)
        except StackError:
            # A fault test before this one restarted Kafka without its secure listener: again, with it.
            manager.down(stack, "kafka")
            manager.up(stack, secure=True)
    except StackError as exc:
        pytest.fail(f"the secure stack could not start: {exc}", pytrace=False)
    return {"basic": read_env(secure.env_file(stack)), "api_key": read_env(secure.apikey_env_file(stack))}


async def test_exact_over_sasl_ssl_and_tls_elasticsearch_with_basic_auth(
    deployment: Deployment, secure_env: dict[str, dict[str, str]]
) -> None:
    env = secure_env["basic"]
    assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL" and env["ELASTICSEARCH_URL"].startswith("https://")
    wl = build(60_000, past_minute(20), minutes=5, partitions=2, lateness_ms=5000, seed=41)
    csv = await deployment.prepare(wl.csv(), partitions=2)
    deployment.start_worker(free_port(), REFERENCE_DATA=csv, **env)
    await produce(deployment.bootstrap, deployment.topic, wl.records)  # the test's own, plaintext
    await assert_exact(deployment, expected_rows(wl.valid, wl.users), wl.rejected)
    log = deployment.logs()
    assert "Kafka: SASL_SSL with SCRAM-SHA-512" in log and "with basic auth as" in log, log[-2000:]


async def test_exact_with_an_api_key(deployment: Deployment, secure_env: dict[str, dict[str, str]]) -> None:
    env = secure_env["api_key"]
    assert env.get("ELASTICSEARCH_API_KEY") and not env.get("ELASTICSEARCH_PASSWORD")
    wl = build(20_000, past_minute(10), minutes=2, partitions=1, lateness_ms=5000, seed=42)
    csv = await deployment.prepare(wl.csv(), partitions=1)
    deployment.start_worker(free_port(), REFERENCE_DATA=csv, **env)
    await produce(deployment.bootstrap, deployment.topic, wl.records)
    await assert_exact(deployment, expected_rows(wl.valid, wl.users), wl.rejected)
    assert "with API key" in deployment.logs()


MISCONFIGURED = [
    ("wrong Kafka password", {"KAFKA_SASL_PASSWORD": "wrong"}, "refused the credentials"),
    ("wrong Kafka CA", {"KAFKA_SSL_CA_LOCATION": "SYSTEM_CA"}, "TLS certificate is not trusted"),
    ("plaintext to the TLS port", {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}, "closed the connection"),
    ("wrong Elasticsearch password", {"ELASTICSEARCH_PASSWORD": "wrong"}, "refused the user and password"),
    ("wrong Elasticsearch CA", {"ELASTICSEARCH_CA_CERTS": "SYSTEM_CA"}, "TLS handshake failed"),
    (
        "http to the TLS port",
        {"ELASTICSEARCH_URL": "http://localhost:9243", "ELASTICSEARCH_CA_CERTS": ""},
        "must start with https://",
    ),
    (
        "invalid API key",
        {"ELASTICSEARCH_USERNAME": "", "ELASTICSEARCH_PASSWORD": "", "ELASTICSEARCH_API_KEY": "bad:key"},
        "refused the API key",
    ),
]


@pytest.mark.parametrize(("case", "override", "expected"), MISCONFIGURED, ids=[c[0] for c in MISCONFIGURED])
async def test_a_misconfiguration_is_one_line_within_30s(
    deployment: Deployment,
    secure_env: dict[str, dict[str, str]],
    case: str,
    override: dict[str, str],
    expected: str,
) -> None:
    system_ca = "/etc/ssl/certs/ca-certificates.crt"
    env = {**secure_env["basic"], **{k: (system_ca if v == "SYSTEM_CA" else v) for k, v in override.items()}}
    if "localhost:9243" in env["ELASTICSEARCH_URL"]:
        env["ELASTICSEARCH_URL"] = env["ELASTICSEARCH_URL"].replace("9243", str(deployment_port(secure_env)))
    started = time.monotonic()
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "clickagg.cli", "worker"],
        env=deployment.env(WEB_PORT=free_port(), **env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    took = time.monotonic() - started
    output = (done.stdout + done.stderr).strip()
    assert done.returncode != 0 and took < 30, (case, done.returncode, took, output[-2000:])
    assert "Traceback" not in output and len(output.splitlines()) == 1, output[-2000:]
    assert output.startswith("clickagg: error: ") and expected in output, output


def deployment_port(secure_env: dict[str, dict[str, str]]) -> int:
    """The secure Elasticsearch port of this stack (CLICKAGG_ES_SECURE_PORT may move it)."""
    return int(secure_env["basic"]["ELASTICSEARCH_URL"].rsplit(":", 1)[1].split("/")[0])
