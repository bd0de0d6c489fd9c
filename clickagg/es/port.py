"""The search-engine port: the few index operations clickagg needs, one code path for both engines.

Stage 2, the schema installer, restore of open documents, progress/completeness, the query API,
the CLI, the live page and the bench all talk to the index through `SearchEngine`; nothing above
this layer imports elasticsearch-py or opensearch-py. Both clients speak the same REST API with
the same request bodies (external versions, composable index templates, composite aggregations,
`filter_path` all exist in Elasticsearch 8 and OpenSearch 2), so one engine class drives either
client; what differs — how a client is called for a response body, which exceptions it raises, its
scan helper, its per-request timeout option — is a `Dialect` (clickagg/es/dialect_*.py).

Errors leave the port as clickagg.es.errors classes only, with the original chained (`from`).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

from clickagg.es.errors import NotFound, SearchEngineError


class Dialect(Protocol):
    """What one client library does its own way (see dialect_elasticsearch / dialect_opensearch)."""

    kind: str  # "elasticsearch" | "opensearch"

    def translate(self, exc: BaseException) -> SearchEngineError | None:
        """The port's error for a client exception, or None when it is not the client's."""

    def body(self, response: Any) -> Any:
        """The parsed response body (elasticsearch-py wraps it, opensearch-py returns it)."""

    def scan(self, client: Any, index: str, body: Mapping[str, Any], size: int) -> AsyncIterable[Any]:
        """Every hit of a query, scrolled."""

    def with_timeout(self, client: Any, timeout_s: float) -> tuple[Any, dict[str, Any]]:
        """(client, extra kwargs) for one request bounded by timeout_s and not retried."""


@contextmanager
def translated(dialect: Dialect) -> Iterator[None]:
    """The one place a client library's exception becomes the port's (the original chained)."""
    try:
        yield
    except SearchEngineError:
        raise
    except Exception as exc:
        err = dialect.translate(exc)
        if err is None:
            raise
        raise err from exc


Build = Callable[[str], tuple[Any, Dialect]]  # engine kind -> (client, dialect)


class SearchEngine:
    """The async port over one client. Build it with clickagg.engines.search_engine (it owns the client).

    kind: "elasticsearch", "opensearch", or a blocking function that finds out (SEARCH_ENGINE=auto
    asks the node with GET /). That question is asked on the first request, not when the object is
    built, so a worker or page that starts while the engine is down waits like for any other
    request, on the same retry path.
    """

    def __init__(self, build: Build, kind: str | Callable[[], str]) -> None:
        self._build = build
        self._kind: str | None = None
        self._find_kind: Callable[[], str] | None = None
        self.client: Any = None
        self.dialect: Dialect = _UNRESOLVED
        if isinstance(kind, str):
            self._resolve(kind)
        else:
            self._find_kind = kind
        self._lock = asyncio.Lock()

    def _resolve(self, kind: str) -> None:
        self.client, self.dialect = self._build(kind)
        self._kind = kind

    @property
    def kind(self) -> str:
        """The engine behind the port ("auto" until the first request found out)."""
        return self._kind or "auto"

    async def ready(self) -> SearchEngine:
        """Find out the engine now (raises Unreachable when it does not answer)."""
        if self._kind is None:
            async with self._lock:
                if self._kind is None:
                    assert self._find_kind is not None
                    self._resolve(await asyncio.to_thread(self._find_kind))
        return self

    async def _call(self, make: Callable[[], Awaitable[Any]]) -> Any:
        await self.ready()
        with translated(self.dialect):
            return self.dialect.body(await make())

    # -- cluster ---------------------------------------------------------------------------------

    async def health(self, timeout_s: float | None = None) -> dict[str, Any]:
        """Cluster health; with timeout_s, one bounded attempt (readiness probes, preflight)."""
        await self.ready()
        client, extra = self.dialect.with_timeout(self.client, timeout_s) if timeout_s else (self.client, {})
        return dict(await self._call(lambda: client.cluster.health(**extra)))

    async def probe(self, index: str, timeout_s: float | None = None) -> bool:
        """Does the engine answer? One bounded HEAD <index> (True/False: it answered either way).

        Not _cluster/health: Amazon OpenSearch Serverless has no cluster APIs, and a user allowed
        only its own indices may not call them; every engine and service answers HEAD on an index
        with the permission the worker needs anyway (the answer also checks the credentials).
        """
        await self.ready()
        client, extra = self.dialect.with_timeout(self.client, timeout_s) if timeout_s else (self.client, {})
        return bool(await self._call(lambda: client.indices.exists(index=index, **extra)))

    # -- documents -------------------------------------------------------------------------------

    async def search(
        self, index: str, body: Mapping[str, Any], *, ignore_unavailable: bool = True
    ) -> dict[str, Any]:
        return dict(
            await self._call(
                lambda: self.client.search(
                    index=index, body=dict(body), ignore_unavailable=ignore_unavailable
                )
            )
        )

    async def count(self, index: str, query: Mapping[str, Any] | None = None) -> int:
        body = {"query": dict(query)} if query is not None else None
        resp = await self._call(lambda: self.client.count(index=index, body=body))
        return int(resp["count"])

    async def scan(
        self, index: str, body: Mapping[str, Any], size: int = 5000
    ) -> AsyncIterator[dict[str, Any]]:
        """Every hit of a query (scroll), errors translated like every other call."""
        await self.ready()
        with translated(self.dialect):
            async for hit in self.dialect.scan(self.client, index, body, size):
                yield hit

    async def bulk(self, body: bytes, filter_path: str | None = None) -> dict[str, Any]:
        """One bulk request of pre-serialised NDJSON (passed through the client untouched)."""
        extra = {"filter_path": filter_path} if filter_path else {}
        return dict(await self._call(lambda: self.client.bulk(body=body, **extra)))

    # -- indices ---------------------------------------------------------------------------------

    async def refresh(self, index: str, *, ignore_unavailable: bool = False) -> None:
        await self._call(
            lambda: self.client.indices.refresh(index=index, ignore_unavailable=ignore_unavailable)
        )

    async def exists(self, index: str) -> bool:
        return bool(await self._call(lambda: self.client.indices.exists(index=index)))

    async def create_index(self, index: str, body: Mapping[str, Any]) -> None:
        await self._call(lambda: self.client.indices.create(index=index, body=dict(body)))

    async def delete_index(self, index: str, *, missing_ok: bool = True) -> None:
        try:
            await self._call(lambda: self.client.indices.delete(index=index))
        except NotFound:
            if not missing_ok:
                raise

    async def indices(self, pattern: str) -> dict[str, Any]:
        """Index name -> its settings/mappings/aliases for the indices a name or pattern matches."""
        try:
            return dict(await self._call(lambda: self.client.indices.get(index=pattern)))
        except NotFound:
            return {}

    async def put_settings(self, index: str, body: Mapping[str, Any]) -> None:
        await self._call(lambda: self.client.indices.put_settings(index=index, body=dict(body)))

    async def get_mapping(self, index: str) -> dict[str, Any]:
        """Concrete index -> {"mappings": ...}; raises NotFound/IndexMissing when there is none."""
        return dict(await self._call(lambda: self.client.indices.get_mapping(index=index)))

    async def put_mapping(self, index: str, body: Mapping[str, Any]) -> None:
        await self._call(lambda: self.client.indices.put_mapping(index=index, body=dict(body)))

    async def put_index_template(self, name: str, body: Mapping[str, Any], *, create: bool = False) -> None:
        await self._call(
            lambda: self.client.indices.put_index_template(name=name, body=dict(body), create=create)
        )

    async def get_index_templates(self, name: str) -> list[dict[str, Any]]:
        """The composable templates a name or pattern matches ([] when none)."""
        try:
            resp = await self._call(lambda: self.client.indices.get_index_template(name=name))
        except NotFound:
            return []
        return list(resp.get("index_templates", []))

    async def delete_index_template(self, name: str, *, missing_ok: bool = True) -> None:
        try:
            await self._call(lambda: self.client.indices.delete_index_template(name=name))
        except NotFound:
            if not missing_ok:
                raise

    async def node_stats(self, metric: str = "indices") -> dict[str, Any]:
        return dict(await self._call(lambda: self.client.nodes.stats(metric=metric)))

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()

    async def __aenter__(self) -> SearchEngine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class SyncBulk:
    """The one blocking operation: bulk posts from the sink's threads (see clickagg.es.sink)."""

    def __init__(self, build: Build, kind: str | Callable[[], str]) -> None:
        self._build = build
        self._kind = kind
        self.client: Any = None
        self.dialect: Dialect = _UNRESOLVED
        self._lock = threading.Lock()

    def _ready(self) -> None:
        if self.client is None:
            with self._lock:
                if self.client is None:
                    kind = self._kind if isinstance(self._kind, str) else self._kind()
                    self.client, self.dialect = self._build(kind)

    def _call(self, make: Callable[[], Any]) -> Any:
        self._ready()
        with translated(self.dialect):
            return self.dialect.body(make())

    def bulk(self, body: bytes, filter_path: str) -> dict[str, Any]:
        return dict(self._call(lambda: self.client.bulk(body=body, filter_path=filter_path)))

    def refresh(self, index: str) -> None:
        self._call(lambda: self.client.indices.refresh(index=index))

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


class _Unresolved:
    """The dialect before the engine is known: translates nothing."""

    kind = "auto"

    def translate(self, exc: BaseException) -> SearchEngineError | None:
        return None

    def body(self, response: Any) -> Any:
        return response

    def scan(self, client: Any, index: str, body: Mapping[str, Any], size: int) -> AsyncIterable[Any]:
        raise RuntimeError("engine not resolved")

    def with_timeout(self, client: Any, timeout_s: float) -> tuple[Any, dict[str, Any]]:
        return client, {}


_UNRESOLVED: Dialect = _Unresolved()
