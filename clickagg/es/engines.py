"""The one factory for search-engine clients: Elasticsearch (elasticsearch-py 8) or OpenSearch (opensearch-py 2).

Everything that talks to the index gets its client here, as the port (clickagg.es.port.SearchEngine,
SyncBulk for the sink's threads), with authentication and TLS from Settings: URL or Cloud ID, API
key, basic auth, CA / fingerprint / verify, and SigV4 for Amazon OpenSearch Service (es) and
Serverless (aoss). Kafka clients come from clickagg.clients. Nothing here logs a secret.
"""

from __future__ import annotations

import logging
from typing import Any

from clickagg.config import ConfigError, Settings
from clickagg.es.errors import Unreachable
from clickagg.es.port import SearchEngine, SyncBulk

log = logging.getLogger(__name__)


def es_options(s: Settings) -> dict[str, Any]:
    """elasticsearch-py keyword arguments: the node (URL or Cloud ID), authentication and TLS.

    An API key wins over basic auth when both are set (describe_es says which one is used).
    """
    options: dict[str, Any] = {}
    if s.elastic_cloud_id:
        options["cloud_id"] = s.elastic_cloud_id
    else:
        options["hosts"] = [s.elasticsearch_url]
    if s.elasticsearch_api_key:
        options["api_key"] = _api_key(s.elasticsearch_api_key)
    elif s.elasticsearch_username:
        options["basic_auth"] = (s.elasticsearch_username, s.elasticsearch_password)
    if s.elasticsearch_ca_certs:
        options["ca_certs"] = s.elasticsearch_ca_certs
    if s.elasticsearch_ssl_fingerprint:
        options["ssl_assert_fingerprint"] = s.elasticsearch_ssl_fingerprint
    if not s.verify_es_certs:
        options["verify_certs"] = False
        options["ssl_show_warn"] = False
    return options


def _api_key(value: str) -> str | tuple[str, str]:
    """`id:key` or the encoded form (base64 of `id:key`), both as Elastic's own tools print them."""
    if ":" in value:
        key_id, _, key = value.partition(":")
        return (key_id, key)
    return value


def es_async(s: Settings, **options: Any) -> Any:
    """A raw elasticsearch-py client (the port's Elasticsearch adapter; the bench's baseline uses it as is)."""
    from elastic_transport import OrjsonSerializer
    from elasticsearch import AsyncElasticsearch

    options.setdefault("serializers", {"application/json": OrjsonSerializer()})
    return AsyncElasticsearch(**es_options(s), **options)


def es_sync(s: Settings, **options: Any) -> Any:
    from elastic_transport import OrjsonSerializer
    from elasticsearch import Elasticsearch

    options.setdefault("serializers", {"application/json": OrjsonSerializer()})
    return Elasticsearch(**es_options(s), **options)


# -- the search-engine port: Elasticsearch or OpenSearch ---------------------------------------------

_DETECTED: dict[str, str] = {}  # node URL -> engine found there (asked once per process)


def engine_kind(s: Settings) -> str:
    """Which engine ELASTICSEARCH_URL points at: SEARCH_ENGINE, or (auto) the node's own GET / answer.

    OpenSearch answers GET / with version.distribution "opensearch"; Elasticsearch does not (and a
    restricted user or the local test node may not be allowed GET / at all): any other HTTP answer
    means Elasticsearch. Blocking; raises clickagg.es.errors.Unreachable when nothing answers, so
    the caller's retry path applies. SigV4 signing implies OpenSearch, a Cloud ID Elasticsearch.
    """
    chosen = s.search_engine.lower()
    if chosen != "auto":
        return chosen
    if s.opensearch_aws_sigv4:
        return "opensearch"
    if s.elastic_cloud_id:
        return "elasticsearch"
    key = s.elasticsearch_url
    if key not in _DETECTED:
        _DETECTED[key] = _ask_node(s)
        log.debug(
            "search engine at %s: %s (SEARCH_ENGINE=auto; set it to skip the question)", key, _DETECTED[key]
        )
    return _DETECTED[key]


def _ask_node(s: Settings) -> str:
    from opensearchpy import OpenSearch
    from opensearchpy.exceptions import ConnectionError as OsConnectionError
    from opensearchpy.exceptions import TransportError

    client = OpenSearch(**os_options(s), timeout=10, max_retries=0)
    hush = _Hush()
    logging.getLogger("opensearch").addFilter(hush)  # its failed-request warning carries a traceback
    try:
        info = client.info()
    except OsConnectionError as exc:
        raise Unreachable(
            f"{s.elasticsearch_url} does not answer ({type(exc).__name__}: {exc.error})"
        ) from exc
    except TransportError:
        return "elasticsearch"  # an HTTP answer that is not OpenSearch's
    finally:
        logging.getLogger("opensearch").removeFilter(hush)
        client.close()
    version = info.get("version", {}) if isinstance(info, dict) else {}
    return "opensearch" if version.get("distribution") == "opensearch" else "elasticsearch"


class _Hush(logging.Filter):
    """Drops the client's own lines while asking GET /: the answer (or Unreachable) says it all."""

    def filter(self, record: logging.LogRecord) -> bool:
        return False


def os_options(s: Settings, sync: bool = True) -> dict[str, Any]:
    """opensearch-py keyword arguments: node, authentication (basic, API key header, SigV4) and TLS."""
    options: dict[str, Any] = {"hosts": [s.elasticsearch_url]}
    if s.opensearch_aws_sigv4:
        options["http_auth"] = _sigv4_auth(s, sync)
    elif s.elasticsearch_api_key:
        options["headers"] = {"Authorization": f"ApiKey {_encoded_api_key(s.elasticsearch_api_key)}"}
    elif s.elasticsearch_username:
        options["http_auth"] = (s.elasticsearch_username, s.elasticsearch_password)
    if s.elasticsearch_url.startswith("https://"):
        options["use_ssl"] = True
        if s.elasticsearch_ca_certs:
            options["ca_certs"] = s.elasticsearch_ca_certs
        if s.elasticsearch_ssl_fingerprint:
            options["ssl_assert_fingerprint"] = s.elasticsearch_ssl_fingerprint.replace(":", "").lower()
        if not s.verify_es_certs:
            options["verify_certs"] = False
            options["ssl_show_warn"] = False
    return options


def _encoded_api_key(value: str) -> str:
    import base64

    return base64.b64encode(value.encode()).decode() if ":" in value else value


def _sigv4_auth(s: Settings, sync: bool) -> Any:
    """SigV4 for Amazon OpenSearch Service (es) or Serverless (aoss), credentials from the AWS chain.

    The chain (env, shared config/profile, web identity, container and instance roles) is boto3's;
    its credentials refresh themselves, and the signer asks for them per request.
    """
    import boto3
    from opensearchpy import AWSV4SignerAsyncAuth, Urllib3AWSV4SignerAuth

    credentials = boto3.Session(region_name=s.aws_region).get_credentials()
    if credentials is None:
        raise ConfigError(
            "OPENSEARCH_AWS_SIGV4 is set but no AWS credentials were found "
            "(set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run with an IAM role)"
        )
    service = s.opensearch_aws_sigv4.lower()
    signer = Urllib3AWSV4SignerAuth if sync else AWSV4SignerAsyncAuth
    return signer(credentials, s.aws_region, service)


def _build_engine(s: Settings, timeout_s: float, max_retries: int, sync: bool) -> Any:
    """kind -> (client, dialect) for the port; the one place either client library is constructed."""

    def build(kind: str) -> tuple[Any, Any]:
        if kind == "opensearch":
            from clickagg.es.dialect_opensearch import OpenSearchDialect, orjson_serializer

            options = {
                **os_options(s, sync=sync),
                "timeout": timeout_s,
                "max_retries": max_retries,
                "serializer": orjson_serializer(),
            }
            if sync:
                from opensearchpy import OpenSearch

                # The sink posts several bulks at once from its threads (elasticsearch-py keeps 10
                # connections; opensearch-py's urllib3 pool keeps 1 and discards the others).
                options["pool_maxsize"] = 10

                return OpenSearch(**options), OpenSearchDialect()
            from opensearchpy import AsyncHttpConnection, AsyncOpenSearch

            if s.opensearch_aws_sigv4:  # the default AIOHttpConnection takes only user:password auth
                options["connection_class"] = AsyncHttpConnection
            return AsyncOpenSearch(**options), OpenSearchDialect()
        from clickagg.es.dialect_elasticsearch import ElasticsearchDialect

        make = es_sync if sync else es_async
        return make(s, request_timeout=timeout_s, max_retries=max_retries), ElasticsearchDialect()

    return build


def search_engine(s: Settings, timeout_s: float = 30.0, max_retries: int = 3) -> SearchEngine:
    """The async port (clickagg.es.port.SearchEngine) for Settings; the caller owns and closes it."""
    kind = s.search_engine.lower()
    finder = kind if kind != "auto" else (lambda: engine_kind(s))
    return SearchEngine(_build_engine(s, timeout_s, max_retries, sync=False), finder)


def search_bulk(s: Settings, timeout_s: float = 30.0) -> SyncBulk:
    """The blocking bulk poster (clickagg.es.port.SyncBulk) for the sink's threads."""
    kind = s.search_engine.lower()
    finder = kind if kind != "auto" else (lambda: engine_kind(s))
    return SyncBulk(_build_engine(s, timeout_s, 3, sync=True), finder)


def describe_es(s: Settings) -> str:
    where = "Elastic Cloud" if s.elastic_cloud_id else s.elasticsearch_url
    if s.opensearch_aws_sigv4:
        auth = f"AWS SigV4 ({s.opensearch_aws_sigv4.lower()}, {s.aws_region})"
    elif s.elasticsearch_api_key:
        auth = "API key"
    elif s.elasticsearch_username:
        auth = f"basic auth as {s.elasticsearch_username}"
    else:
        auth = "no authentication"
    engine = s.search_engine.lower()
    return f"{where} ({engine}) with {auth}"
