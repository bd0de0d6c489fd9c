"""The worker's preflight names what failed and which setting to look at (pure mapping, no services)."""

from __future__ import annotations

from clickagg.config import Settings
from clickagg.preflight import es_problem, kafka_problem

SCRAM = Settings(
    kafka_bootstrap_servers="b:9094",
    kafka_security_protocol="SASL_SSL",
    kafka_sasl_mechanism="SCRAM-SHA-512",
    kafka_sasl_username="u",
    kafka_sasl_password="p",
)


def test_kafka_failures_are_named_and_final_unless_unreachable() -> None:
    auth = "[Error 58] SaslAuthenticationFailed: Authentication failed during authentication due to invalid credentials"
    assert kafka_problem(SCRAM, [f'Unable connect to "b:9094": {auth}']) == (
        "Kafka at b:9094 refused the credentials (SCRAM-SHA-512): check KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD",
        True,
    )
    line, final = kafka_problem(
        SCRAM, ["[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed"]
    )
    assert final and "check KAFKA_SSL_CA_LOCATION" in line
    plain = Settings(
        kafka_bootstrap_servers="b:9094",
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username="u",
        kafka_sasl_password="p",
    )
    line, final = kafka_problem(plain, ["KafkaConnectionError: Connection at b:9094 closed"])
    assert final and "KAFKA_SECURITY_PROTOCOL" in line
    line, final = kafka_problem(
        Settings(), ["Unable connect to node with id 1: [Errno 111] Connect call failed"]
    )
    assert not final and "is not reachable: check KAFKA_BOOTSTRAP_SERVERS" in line


class ApiError(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status_code = status


class AuthenticationException(ApiError):
    pass


class TlsError(Exception):
    pass


def test_elasticsearch_failures_name_the_setting() -> None:
    key = Settings(elasticsearch_url="https://es:9243", elasticsearch_api_key="id:key")
    assert es_problem(key, AuthenticationException(401, "unauthorized"))[0].endswith(
        "refused the API key: check ELASTICSEARCH_API_KEY (expired or invalid?)"
    )
    basic = Settings(
        elasticsearch_url="https://es:9243", elasticsearch_username="u", elasticsearch_password="p"
    )
    assert "ELASTICSEARCH_USERNAME and ELASTICSEARCH_PASSWORD" in es_problem(basic, ApiError(401, "no"))[0]
    line, final = es_problem(basic, TlsError("TLS error"))
    assert final and "ELASTICSEARCH_CA_CERTS" in line
    line, final = es_problem(Settings(), ApiError(400, "The plain HTTP request was sent to HTTPS port"))
    assert final and line.endswith("the URL must start with https://")
    line, final = es_problem(Settings(), ConnectionError("Connection refused"))
    assert not final and "is not reachable" in line
