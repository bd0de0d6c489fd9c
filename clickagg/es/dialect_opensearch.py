"""The port's OpenSearch adapter: opensearch-py 2 (async and blocking), as clients.py builds it.

elasticsearch-py 8 refuses OpenSearch (its product check), so OpenSearch gets its own client; the
requests are the port's, identical for both engines.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Mapping
from typing import Any

import orjson
from opensearchpy.exceptions import (
    ConnectionError as OsConnectionError,
)
from opensearchpy.exceptions import (
    ImproperlyConfigured,
    TransportError,
)
from opensearchpy.helpers import async_scan
from opensearchpy.serializer import JSONSerializer

from clickagg.es.dialect_elasticsearch import _error
from clickagg.es.errors import SearchEngineError, Unreachable, classify


class OpenSearchDialect:
    kind = "opensearch"

    def translate(self, exc: BaseException) -> SearchEngineError | None:
        if isinstance(exc, OsConnectionError):  # also ConnectionTimeout and SSLError; status "N/A"
            return Unreachable(f"{type(exc).__name__}: {exc.error}")
        if isinstance(exc, TransportError):
            status = exc.status_code if isinstance(exc.status_code, int) else None
            error_type, reason = _error(exc.info)
            error_type = error_type or str(exc.error)
            return classify(status, error_type)(f"{status} {error_type}: {reason}", status, reason)
        if isinstance(exc, ImproperlyConfigured):
            return SearchEngineError(f"OpenSearch client settings: {exc}")
        return None

    def body(self, response: Any) -> Any:
        return response

    def scan(self, client: Any, index: str, body: Mapping[str, Any], size: int) -> AsyncIterable[Any]:
        return async_scan(client, index=index, query=dict(body), size=size)

    def with_timeout(self, client: Any, timeout_s: float) -> tuple[Any, dict[str, Any]]:
        return client, {"params": {"request_timeout": timeout_s}}


class _OrjsonSerializer(JSONSerializer):
    """orjson both ways, like the Elasticsearch client's OrjsonSerializer: bulk and search bodies are big."""

    def loads(self, s: Any) -> Any:
        return orjson.loads(s)

    def dumps(self, data: Any) -> Any:
        if isinstance(data, (str, bytes)):
            return data
        return orjson.dumps(data).decode()


def orjson_serializer() -> JSONSerializer:
    return _OrjsonSerializer()
