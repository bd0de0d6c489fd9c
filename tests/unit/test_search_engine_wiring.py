"""The search-engine factory's wiring, without a cluster: SigV4 signing (no AWS reachable here, so a
local HTTP server records what the clients send), settings validation, and error translation."""

from __future__ import annotations

import asyncio
import http.server
import threading
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from clickagg.config import ConfigError, Settings, load
from clickagg.es import engines
from clickagg.es.dialect_elasticsearch import ElasticsearchDialect
from clickagg.es.dialect_opensearch import OpenSearchDialect
from clickagg.es.errors import BadRequest, IndexMissing, NotFound, Unreachable


class Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[dict[str, Any]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.seen.append(
            {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
        )
        payload = {"errors": False, "items": []} if "_bulk" in self.path else {"status": "green"}
        data = orjson.dumps(payload)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[str]:
    Recorder.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.mark.parametrize("service", ["es", "aoss"])
def test_sigv4_signs_async_and_threaded_requests(recorder: str, aws_credentials: None, service: str) -> None:
    s = load(elasticsearch_url=recorder, opensearch_aws_sigv4=service, aws_region="eu-west-1")
    assert engines.engine_kind(s) == "opensearch"  # SigV4 means OpenSearch: nobody asks GET /

    async def health() -> None:
        engine = engines.search_engine(s, timeout_s=5, max_retries=0)
        try:
            assert (await engine.health())["status"] == "green"
            assert engine.kind == "opensearch"
        finally:
            await engine.close()

    asyncio.run(health())
    bulk = engines.search_bulk(s)
    try:
        assert bulk.bulk(b'{"index":{"_index":"x","_id":"1"}}\n{"a":1}\n', "errors") == {
            "errors": False,
            "items": [],
        }
    finally:
        bulk.close()
    assert [r["path"].split("?")[0] for r in Recorder.seen] == ["/_cluster/health", "/_bulk"]
    for request in Recorder.seen:
        auth = request["headers"]["Authorization"]
        assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"), auth
        assert f"/eu-west-1/{service}/aws4_request" in auth, auth
        assert "SignedHeaders=" in auth and "Signature=" in auth
        assert request["headers"]["X-Amz-Date"]
    # the signed payload hash is the body's: a body changed on the way would not verify
    import hashlib

    bulk_request = Recorder.seen[1]
    assert bulk_request["headers"]["X-Amz-Content-SHA256"] == hashlib.sha256(bulk_request["body"]).hexdigest()


def test_sigv4_without_credentials_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    s = load(
        elasticsearch_url="https://search-x.eu-west-1.es.amazonaws.com",
        opensearch_aws_sigv4="es",
        aws_region="eu-west-1",
    )
    with pytest.raises(ConfigError, match=r"^OPENSEARCH_AWS_SIGV4 is set but no AWS credentials were found"):
        engines.search_bulk(s).bulk(b"", "errors")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"search_engine": "solr"},
            "SEARCH_ENGINE must be one of auto, elasticsearch, opensearch, got 'solr'",
        ),
        (
            {"opensearch_aws_sigv4": "s3"},
            "OPENSEARCH_AWS_SIGV4 must be es (OpenSearch Service) or aoss (Serverless), got 's3'",
        ),
        ({"opensearch_aws_sigv4": "es"}, "AWS_REGION is needed for OPENSEARCH_AWS_SIGV4"),
        (
            {"opensearch_aws_sigv4": "aoss", "aws_region": "us-east-1", "search_engine": "elasticsearch"},
            "OPENSEARCH_AWS_SIGV4 signs OpenSearch requests: use SEARCH_ENGINE=opensearch or auto",
        ),
    ],
)
def test_engine_settings_are_validated(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        Settings(**overrides).validate()  # type: ignore[arg-type]
    assert str(err.value) == message


def test_explicit_engine_is_never_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_question(s: Settings) -> str:
        raise AssertionError("GET / asked although SEARCH_ENGINE was given")

    monkeypatch.setattr(engines, "_ask_node", no_question)
    assert engines.engine_kind(Settings(search_engine="opensearch")) == "opensearch"
    assert engines.engine_kind(Settings(search_engine="elasticsearch")) == "elasticsearch"
    assert engines.engine_kind(Settings(elastic_cloud_id="x:eA==")) == "elasticsearch"


def test_auto_on_a_dead_node_is_unreachable_and_not_remembered() -> None:
    s = Settings(elasticsearch_url="http://127.0.0.1:9")
    with pytest.raises(Unreachable) as err:
        engines.engine_kind(s)
    assert err.value.reason == "connection refused"
    assert s.elasticsearch_url not in engines._DETECTED  # the next call asks again


def test_both_dialects_translate_http_errors_to_the_port_classes() -> None:
    from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig
    from elasticsearch import ApiError
    from opensearchpy.exceptions import NotFoundError as OsNotFound
    from opensearchpy.exceptions import RequestError

    meta = ApiResponseMeta(404, "HTTP/1.1", HttpHeaders(), 0.0, NodeConfig("http", "localhost", 9200))
    missing = {"error": {"type": "index_not_found_exception", "reason": "no such index [x]"}, "status": 404}
    es_err = ElasticsearchDialect().translate(ApiError("index_not_found_exception", meta, missing))
    os_err = OpenSearchDialect().translate(OsNotFound(404, "index_not_found_exception", missing))
    for err in (es_err, os_err):
        assert isinstance(err, IndexMissing) and err.status == 404 and err.reason == "no such index [x]"
    bad = {"error": {"type": "mapper_parsing_exception", "reason": "failed to parse"}, "status": 400}
    os_bad = OpenSearchDialect().translate(RequestError(400, "mapper_parsing_exception", bad))
    assert isinstance(os_bad, BadRequest) and not isinstance(os_bad, NotFound)
    assert ElasticsearchDialect().translate(ValueError("not the client's")) is None
