"""Security settings reach every client through clickagg.clients, and secrets never show."""

from __future__ import annotations

import asyncio
import ssl
import sys
import types
from pathlib import Path

import pytest

from clickagg import clients, config
from clickagg.app.auth import authorized
from clickagg.config import ConfigError, Settings
from clickagg.es import engines

SECRET = "s3cr3t-Zq9-unique"


def ca_file(tmp_path: Path) -> str:
    """A real CA certificate file (the system's default bundle is not guaranteed here)."""
    import subprocess

    key, cert = tmp_path / "ca.key", tmp_path / "ca.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=test-ca",
        ],
        check=True,
        capture_output=True,
    )
    return str(cert)


def test_secrets_are_never_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret_file = tmp_path / "pw"
    secret_file.write_text(SECRET + "\n")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "clickagg")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD_FILE", str(secret_file))
    monkeypatch.setenv("ELASTICSEARCH_API_KEY", SECRET + "-api")
    monkeypatch.setenv("WEB_AUTH_TOKEN", SECRET + "-web")
    s = config.load()
    assert s.kafka_sasl_password == SECRET  # from the _FILE, final newline stripped
    assert SECRET not in repr(s) and SECRET not in str(s)
    assert SECRET not in clients.describe_kafka(s) + engines.describe_es(s)
    assert engines.describe_es(s).endswith("with API key")


def test_a_missing_secret_file_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ELASTICSEARCH_PASSWORD_FILE", "/nonexistent/pw")
    with pytest.raises(ConfigError, match=r"^ELASTICSEARCH_PASSWORD_FILE=/nonexistent/pw: cannot read it"):
        config.load()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL must be one of"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "KAFKA_SASL_MECHANISM must be one of"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "PLAIN"}, "KAFKA_SASL_USERNAME and"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "AWS_MSK_IAM"},
            "AWS_REGION is needed",
        ),
        ({"KAFKA_SSL_CA_LOCATION": "/nonexistent/ca.pem"}, "KAFKA_SSL_CA_LOCATION file not found"),
        ({"KAFKA_SSL_ENDPOINT_IDENTIFICATION": "maybe"}, "must be https or none"),
        (
            {"ELASTICSEARCH_USERNAME": "elastic"},
            "ELASTICSEARCH_USERNAME and ELASTICSEARCH_PASSWORD go together",
        ),
    ],
)
def test_misconfiguration_is_refused_with_one_line(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=message):
        config.load()


def test_plaintext_is_the_default_and_unchanged() -> None:
    assert clients.kafka_options(Settings()) == {
        "bootstrap_servers": "localhost:9092",
        "security_protocol": "PLAINTEXT",
    }
    assert engines.es_options(Settings()) == {"hosts": ["http://localhost:9200"]}


def test_sasl_ssl_scram_with_ca_and_hostname_verification(tmp_path: Path) -> None:
    ca = ca_file(tmp_path)
    s = Settings(
        kafka_bootstrap_servers="b1:9094,b2:9094",
        kafka_security_protocol="sasl_ssl",
        kafka_sasl_mechanism="scram-sha-512",
        kafka_sasl_username="u",
        kafka_sasl_password=SECRET,
        kafka_ssl_ca_location=ca,
    ).validate()
    options = clients.kafka_options(s)
    assert options["security_protocol"] == "SASL_SSL" and options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("u", SECRET)
    context = options["ssl_context"]
    assert (
        isinstance(context, ssl.SSLContext)
        and context.check_hostname
        and context.verify_mode == ssl.CERT_REQUIRED
    )
    assert any(c.get("subject") == ((("commonName", "test-ca"),),) for c in context.get_ca_certs())
    no_check = clients.kafka_options(Settings(**{**s.__dict__, "kafka_ssl_endpoint_identification": "none"}))
    assert not no_check["ssl_context"].check_hostname


def test_every_kafka_client_gets_the_same_security(tmp_path: Path) -> None:
    s = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username="u",
        kafka_sasl_password=SECRET,
        kafka_ssl_ca_location=ca_file(tmp_path),
    ).validate()

    async def build() -> None:
        consumer, producer, admin = clients.consumer(s), clients.producer(s), clients.admin(s)
        for inner in (consumer._client, producer.client, admin._client):
            assert inner._security_protocol == "SASL_SSL" and inner._sasl_mechanism == "PLAIN"
            assert inner._sasl_plain_password == SECRET
        await consumer.stop()
        await producer.stop()
        await admin.close()
        assert clients.faust_credentials(s).mechanism.value == "PLAIN"

    asyncio.run(build())


def test_msk_iam_token_provider_calls_the_signer_with_the_region(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    fake = types.ModuleType("aws_msk_iam_sasl_signer")

    class MSKAuthTokenProvider:
        @staticmethod
        def generate_auth_token(region: str) -> tuple[str, int]:
            calls.append(region)
            return ("signed-token", 123)

    fake.MSKAuthTokenProvider = MSKAuthTokenProvider  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "aws_msk_iam_sasl_signer", fake)
    s = Settings(
        kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="AWS_MSK_IAM", aws_region="eu-west-1"
    ).validate()
    options = clients.kafka_options(s)
    assert options["sasl_mechanism"] == "OAUTHBEARER"
    provider = options["sasl_oauth_token_provider"]
    assert asyncio.run(provider.token()) == "signed-token" and calls == ["eu-west-1"]

    async def wired() -> None:  # and aiokafka takes it as its token provider
        consumer = clients.consumer(s)
        assert isinstance(consumer._client._sasl_oauth_token_provider, clients.MskIamTokenProvider)
        assert consumer._client._sasl_mechanism == "OAUTHBEARER"
        await consumer.stop()

    asyncio.run(wired())


def test_elasticsearch_api_key_wins_over_basic_auth_and_cloud_id_replaces_the_url(tmp_path: Path) -> None:
    ca = ca_file(tmp_path)
    s = Settings(
        elasticsearch_url="https://es.example:9243",
        elasticsearch_api_key="id1:key1",
        elasticsearch_username="elastic",
        elasticsearch_password=SECRET,
        elasticsearch_ca_certs=ca,
    ).validate()
    options = engines.es_options(s)
    assert options["api_key"] == ("id1", "key1") and "basic_auth" not in options
    assert options["ca_certs"] == ca and options["hosts"] == ["https://es.example:9243"]
    assert engines.es_options(Settings(elasticsearch_api_key="ZW5jb2RlZA=="))["api_key"] == "ZW5jb2RlZA=="
    basic = engines.es_options(Settings(elasticsearch_username="elastic", elasticsearch_password=SECRET))
    assert basic["basic_auth"] == ("elastic", SECRET)
    cloud = Settings(
        elastic_cloud_id="deploy:ZXhhbXBsZS5jb20kYWJjJGRlZg==", elasticsearch_verify_certs="false"
    )
    options = engines.es_options(cloud.validate())
    assert (
        options["cloud_id"].startswith("deploy:")
        and "hosts" not in options
        and options["verify_certs"] is False
    )
    fingerprint = engines.es_options(Settings(elasticsearch_ssl_fingerprint="AB:CD"))
    assert fingerprint["ssl_assert_fingerprint"] == "AB:CD"


def test_web_auth_token_is_checked_in_constant_time_and_only_when_set() -> None:
    assert authorized("", None)
    assert authorized(SECRET, f"Bearer {SECRET}")
    assert (
        not authorized(SECRET, None)
        and not authorized(SECRET, f"Bearer {SECRET}x")
        and not authorized(SECRET, SECRET)
    )
