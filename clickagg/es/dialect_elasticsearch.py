"""The port's Elasticsearch adapter: elasticsearch-py 8 (async and blocking), as clients.py builds it."""

from __future__ import annotations

from collections.abc import AsyncIterable, Mapping
from typing import Any

from elastic_transport import TransportError
from elasticsearch import ApiError
from elasticsearch.helpers import async_scan

from clickagg.es.errors import SearchEngineError, Unreachable, classify


class ElasticsearchDialect:
    kind = "elasticsearch"

    def translate(self, exc: BaseException) -> SearchEngineError | None:
        if isinstance(exc, ApiError):
            error_type, reason = _error(exc.body)
            status = exc.meta.status
            return classify(status, error_type)(
                f"{status} {error_type or exc.message}: {reason}", status, reason
            )
        if isinstance(exc, TransportError):  # connection refused, timeout, TLS: no HTTP answer
            return Unreachable(f"{type(exc).__name__}: {exc.message}")
        return None

    def body(self, response: Any) -> Any:
        return getattr(response, "body", response)  # ObjectApiResponse / HeadApiResponse(bool)

    def scan(self, client: Any, index: str, body: Mapping[str, Any], size: int) -> AsyncIterable[Any]:
        return async_scan(client, index=index, query=dict(body), size=size)

    def with_timeout(self, client: Any, timeout_s: float) -> tuple[Any, dict[str, Any]]:
        return client.options(request_timeout=timeout_s, max_retries=0), {}


def _error(body: Any) -> tuple[str, str]:
    """(type, reason) of an Elasticsearch/OpenSearch error body; both engines use the same shape."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("type", "")), str(error.get("reason", ""))
        if error is not None:
            return "", str(error)
    return "", str(body)[:200] if body else ""
