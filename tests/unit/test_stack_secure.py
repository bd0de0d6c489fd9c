"""`stack up --secure` pieces that need no running process: broker properties, settings, escaping, redaction."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from clickagg.stack import javatool, secure
from clickagg.stack.layout import StackError, StackLayout
from clickagg.stack.services import _kafka_properties

PLAIN_PROPERTIES = """process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:19093
listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:19093
advertised.listeners=PLAINTEXT://127.0.0.1:9092
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=/s/kafka/data
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=8
group.initial.rebalance.delay.ms=0
log.retention.hours=24
"""


def layout(state: Path = Path("/s")) -> StackLayout:
    return StackLayout(cache_dir=Path("/c"), state_dir=state, kafka_port=9092, es_port=9200)


def test_plain_broker_properties_are_unchanged() -> None:
    assert _kafka_properties(layout(), Path("/s/kafka/data")) == PLAIN_PROPERTIES


def test_secure_broker_adds_one_sasl_ssl_listener_and_keeps_the_rest(tmp_path: Path) -> None:
    lay = layout(tmp_path)
    listener = secure.kafka_listener(lay)
    text = _kafka_properties(lay, tmp_path / "kafka" / "data", listener)
    props = dict(line.split("=", 1) for line in text.splitlines())
    assert (
        props["listeners"]
        == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:19093,SASL_SSL://127.0.0.1:9094"
    )
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092,SASL_SSL://localhost:9094"
    assert (
        props["listener.security.protocol.map"]
        == "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL"
    )
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    assert props["listener.name.sasl_ssl.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["listener.name.sasl_ssl.ssl.keystore.type"] == "PEM"
    # Everything the plain broker has is still there, with the same value, except the three listener lines.
    plain = dict(line.split("=", 1) for line in PLAIN_PROPERTIES.replace("/s/", f"{tmp_path}/").splitlines())
    changed = {k for k, v in plain.items() if props.get(k) != v}
    assert changed == {"listeners", "advertised.listeners", "listener.security.protocol.map"}
    password = secure.load_secrets(lay).kafka_password
    assert password not in text  # the password only reaches the storage format, through an argfile
    assert listener.format_args == ("--add-scram", f"SCRAM-SHA-512=[name=clickagg,password={password}]")
    assert listener.secrets == (password,)


def test_secret_files_are_private_and_kept(tmp_path: Path) -> None:
    lay = layout(tmp_path)
    first = secure.load_secrets(lay)
    assert secure.load_secrets(lay) == first
    assert stat.S_IMODE(secure.secure_dir(lay).stat().st_mode) == 0o700
    for path in secure.secret_files(lay).values():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len({first.kafka_password, first.es_password, first.api_key}) == 3


def test_settings_use_the_contract_names_and_never_both_es_auths(tmp_path: Path) -> None:
    lay = layout(tmp_path)
    basic = secure.client_settings(lay)
    assert list(basic) == [
        "KAFKA_BOOTSTRAP_SERVERS", "KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME",
        "KAFKA_SASL_PASSWORD", "KAFKA_SSL_CA_LOCATION", "ELASTICSEARCH_URL", "ELASTICSEARCH_USERNAME",
        "ELASTICSEARCH_PASSWORD", "ELASTICSEARCH_CA_CERTS",
    ]  # fmt: skip
    apikey = secure.client_settings(lay, api_key=True)
    assert "ELASTICSEARCH_API_KEY" in apikey and "ELASTICSEARCH_PASSWORD" not in apikey
    env, apikey_env = secure.write_env_files(lay)
    assert stat.S_IMODE(env.stat().st_mode) == stat.S_IMODE(apikey_env.stat().st_mode) == 0o600
    active = [line for line in env.read_text().splitlines() if line and not line.startswith("#")]
    assert not any(line.startswith("ELASTICSEARCH_API_KEY=") for line in active)


def test_api_key_regex_matches_only_the_exact_header(tmp_path: Path) -> None:
    key = secure.load_secrets(layout(tmp_path)).api_key_encoded + "+/="  # the characters base64 may hold
    pattern = re.compile(f"^ApiKey {secure._regex_escape(key)}$")  # nginx's PCRE reads it the same way
    assert pattern.match(f"ApiKey {key}")
    for wrong in (f"ApiKey {key.swapcase()}", f"ApiKey {key}x", f"ApiKey {key[:-1]}", f"Basic {key}", key):
        assert not pattern.match(wrong)


def test_secure_applies_to_kafka_and_elasticsearch_only(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="--secure applies to kafka and elasticsearch"):
        secure.prepare(layout(tmp_path), "opensearch")


def test_redaction_hides_every_secret() -> None:
    out = javatool.redact("Invalid credential SCRAM_SHA_512=[password=s3cr3t] and s3cr3t-longer", ["s3cr3t"])
    assert "s3cr3t" not in out and out.count(javatool.REDACTED) == 2


def test_plain_status_has_no_secure_lines(tmp_path: Path) -> None:
    assert secure.status(layout(tmp_path)) == (True, [])
    assert secure.down(layout(tmp_path)) == []
