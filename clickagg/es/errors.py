"""What the search-engine port raises, whichever engine (Elasticsearch or OpenSearch) is behind it.

Callers catch these, never a client library's own classes: the adapters translate them, so the
stages, the read side and the CLI hold one error vocabulary and one code path for both engines.
"""

from __future__ import annotations


class SearchEngineError(Exception):
    """A request the engine refused or could not answer. status is the HTTP status (None: no answer)."""

    def __init__(self, message: str, status: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason or message


class Unreachable(SearchEngineError):
    """No answer: connection refused, DNS, TLS handshake, timeout. reason: those words, short."""

    def __init__(self, message: str, status: int | None = None, reason: str = "") -> None:
        super().__init__(message, None, reason or short_reason(message))


def short_reason(text: str) -> str:
    """What a person needs from a client library's long connection error."""
    low = text.lower()
    for needle, reason in (
        ("connection refused", "connection refused"),
        ("certificate verify failed", "TLS certificate not trusted"),
        ("timed out", "timed out"),
        ("timeout", "timed out"),
        ("name or service not known", "host name not found"),
        ("nodename nor servname", "host name not found"),
        ("temporary failure in name resolution", "host name not found"),
        ("wrong version number", "TLS spoken to a plain HTTP port, or the reverse"),
    ):
        if needle in low:
            return reason
    return text[:160]


class NotFound(SearchEngineError):
    """404: an index, template or document that does not exist."""


class IndexMissing(NotFound):
    """404 index_not_found_exception: reading an index (or alias) nobody created."""


class BadRequest(SearchEngineError):
    """400: a request the engine will not take as written (mapping conflict, exists already, ...)."""


class Forbidden(SearchEngineError):
    """401/403: the credentials lack a permission (or are wrong)."""


class Conflict(SearchEngineError):
    """409: a version conflict (an external version not above the stored one)."""


def classify(status: int | None, error_type: str = "") -> type[SearchEngineError]:
    """The port's class for an HTTP status and the engine's error type (e.g. index_not_found_exception)."""
    if status is None:
        return Unreachable
    if status == 404:
        return IndexMissing if error_type == "index_not_found_exception" else NotFound
    if status == 400:
        return BadRequest
    if status in (401, 403):
        return Forbidden
    if status == 409:
        return Conflict
    return SearchEngineError
